FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    BORDERWATCH_DB=/app/state/borderwatch.db BORDERWATCH_CONFIG=/app/config/watch.yaml
WORKDIR /app
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY config ./config
RUN pip install . && useradd --create-home --uid 10001 borderwatch \
    && mkdir -p /app/state && chown borderwatch /app/state
USER borderwatch
VOLUME ["/app/state"]
HEALTHCHECK --interval=1m --timeout=10s --start-period=2m CMD ["borderwatch", "status", "--check"]
CMD ["borderwatch", "run"]
