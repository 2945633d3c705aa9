# The two commands at the top of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRISM := tools/node_modules/.bin/prism

.PHONY: demo test lint typecheck check migration clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/digest demo

# Stoplight Prism mocks SendGrid for the contract test; needs npm (skipped if it is missing,
# and then the contract test says why).
$(PRISM):
	@if command -v npm >/dev/null; then \
		mkdir -p tools && npm install --silent --no-audit --no-fund --prefix tools \
			@stoplight/prism-cli@5.14.2; \
	else echo "npm not found: the SendGrid contract test needs Stoplight Prism"; fi

test: $(STAMP) $(PRISM)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check digest tests bench worker.py

typecheck: $(STAMP)
	$(BIN)/mypy digest worker.py

check: lint typecheck test

# Regenerate the initial migration from digest/models.py (only before the first release).
migration: $(STAMP)
	rm -f digest/migrations/versions/0001_initial_schema.py /tmp/digest-migration.db
	$(BIN)/python -c "from alembic import command; from digest.schema import alembic_config; command.revision(alembic_config('sqlite:////tmp/digest-migration.db'), message='initial schema', autogenerate=True, rev_id='0001')"
	sed -i 's/digest\.models\.UTCDateTime(timezone=True)/sa.DateTime(timezone=True)/g' digest/migrations/versions/0001_initial_schema.py

clean:
	rm -rf $(VENV) digest.db outbox
