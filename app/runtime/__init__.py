"""Running the server: gunicorn settings and hooks, log lines, background work, checks."""
