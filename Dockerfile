# One image for the web app, the Celery worker and the Celery beat.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY digest ./digest
COPY templates ./templates
COPY worker.py ./
RUN pip install -e . && useradd --system --home /app digest && chown -R digest /app
USER digest

EXPOSE 8000
CMD ["digest", "serve", "--host", "0.0.0.0", "--port", "8000"]
