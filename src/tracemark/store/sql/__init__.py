"""The SQL store on SQLAlchemy Core: SQLite (embedded default) and PostgreSQL."""
