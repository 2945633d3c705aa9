# One image for the web app, the Celery worker and the Celery beat.
# Build the wheel in one stage (templates/, the sample feed and the migrations go inside the
# package), install the locked dependencies and the wheel in the next.
FROM python:3.11-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir hatchling==1.33.0
COPY pyproject.toml README.md ./
COPY digest ./digest
COPY templates ./templates
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /dist .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY requirements/lock.txt ./requirements/lock.txt
RUN pip install --require-hashes -r requirements/lock.txt
COPY --from=build /dist/*.whl /tmp/
RUN pip install --no-deps /tmp/*.whl && rm /tmp/*.whl \
    && useradd --system --home /app digest && chown -R digest /app
# worker.py sits at the top so `celery -A worker worker|beat` runs from /app.
COPY worker.py ./
USER digest

EXPOSE 8000
CMD ["digest", "serve", "--host", "0.0.0.0", "--port", "8000"]
