"""Storage: the SQL database (SQLite or PostgreSQL), trial and version tables, and the artifact store."""
