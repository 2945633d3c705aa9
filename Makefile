# The two commands at the top of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PRISM := tools/node_modules/.bin/prism
AXE := tools/node_modules/axe-core/axe.min.js

# Pinned, hashed dependencies: requirements/lock.txt (what the service runs on, used by the
# Dockerfile) and requirements/dev.txt (the same plus the dev extra, used here and in CI).
LOCK := requirements/lock.txt
DEV_LOCK := requirements/dev.txt
UV_VERSION := 0.13.9
COMPILE = $(BIN)/uv pip compile pyproject.toml --universal --python-version 3.11 \
	--generate-hashes --quiet --no-header $(UPGRADE)

.PHONY: demo test lint typecheck check audit lock wheel wheel-demo migration clean

# The locked dependencies first (hash-checked), then the project itself without resolving again.
$(STAMP): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

$(BIN)/uv:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==$(UV_VERSION)

# Re-resolve after editing pyproject.toml: pins already in the lock files are kept where they
# still fit (`make lock UPGRADE=--upgrade` moves everything to the newest allowed release).
# The dev lock is resolved first; the service lock is constrained to the same versions.
lock: $(BIN)/uv
	$(COMPILE) --extra dev -o $(DEV_LOCK)
	$(COMPILE) -c $(DEV_LOCK) -o $(LOCK)

# Known vulnerabilities in any locked package (queries the PyPI advisory database).
audit: $(STAMP)
	$(BIN)/pip-audit --progress-spinner off --disable-pip --require-hashes -r $(DEV_LOCK)

# The wheel, with templates/, the sample feed and the migrations inside the package.
wheel: $(BIN)/uv
	rm -rf dist
	$(BIN)/uv build --wheel --out-dir dist .

# The wheel as a user gets it: a fresh venv outside the repository, the locked dependencies,
# the wheel, and `digest demo` run from an empty directory.
WHEEL_ENV ?= /tmp/digest-wheel-demo
wheel-demo: wheel
	rm -rf $(WHEEL_ENV) && mkdir -p $(WHEEL_ENV)/run
	$(PYTHON) -m venv $(WHEEL_ENV)/venv
	$(WHEEL_ENV)/venv/bin/pip install --quiet --require-hashes -r $(LOCK)
	$(WHEEL_ENV)/venv/bin/pip install --quiet --no-deps dist/*.whl
	cd $(WHEEL_ENV)/run && $(WHEEL_ENV)/venv/bin/digest demo

demo: $(STAMP)
	$(BIN)/digest demo

# Stoplight Prism mocks SendGrid for the contract test; needs npm (skipped if it is missing,
# and then the contract test says why).
$(PRISM):
	@if command -v npm >/dev/null; then \
		mkdir -p tools && npm install --silent --no-audit --no-fund --prefix tools \
			@stoplight/prism-cli@5.14.2; \
	else echo "npm not found: the SendGrid contract test needs Stoplight Prism"; fi

# axe-core checks the reader pages' accessibility in the browser test.
$(AXE):
	@if command -v npm >/dev/null; then \
		mkdir -p tools && npm install --silent --no-audit --no-fund --prefix tools axe-core@4.10.2; \
	else echo "npm not found: the browser accessibility test needs axe-core"; fi

test: $(STAMP) $(PRISM) $(AXE)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check digest tests bench worker.py
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy digest worker.py

check: lint typecheck test

# Regenerate the initial migration from digest/store/models.py (only before the first release).
migration: $(STAMP)
	rm -f digest/store/migrations/versions/0001_initial_schema.py /tmp/digest-migration.db
	$(BIN)/python -c "from alembic import command; from digest.store.migrate import alembic_config; command.revision(alembic_config('sqlite:////tmp/digest-migration.db'), message='initial schema', autogenerate=True, rev_id='0001')"
	sed -i 's/digest\.store\.models\.UTCDateTime(timezone=True)/sa.DateTime(timezone=True)/g' digest/store/migrations/versions/0001_initial_schema.py

clean:
	rm -rf $(VENV) digest.db outbox dist
