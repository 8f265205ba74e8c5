"""The tracemark server: REST API, OTLP ingest and the web UI, on FastAPI."""
