"""gunicorn settings and hooks: ``gunicorn -c python:app.serving 'app:create_app()'``.

One gevent worker serves HTTP and WebSocket; the migrations run once, in the master, before any
worker starts.
"""

from __future__ import annotations

from .config import server_settings
from .snapshot import CLOSE_CONNECTION_ATTR, RAW_HEADERS_ATTR

_settings = server_settings()

if _settings.worker_class == "gevent":
    # Patch the master too: gunicorn's gevent worker patches only after the fork, and by then the
    # migrations run in on_starting have imported ssl-using modules unpatched.
    from gevent import monkey

    monkey.patch_all()

bind = [f"{_settings.host}:{_settings.port}"]
worker_class = _settings.worker_class
workers = _settings.workers
worker_connections = _settings.worker_connections
threads = _settings.threads
# A WebSocket or a slow upload keeps a greenlet busy, not the worker: the timeout is a heartbeat.
timeout = 30
graceful_timeout = 10
keepalive = 5
# Webhook senders may use long URLs and many or long headers; these are gunicorn's ceilings
# (limit_request_line cannot exceed 8190).
limit_request_line = 8190
limit_request_fields = 200
limit_request_field_size = 16384
# Forwarded headers are handled by the app (HOOKSCOPE_PROXY_COUNT), not trusted by gunicorn.
forwarded_allow_ips = ""
# gunicorn drops header names with underscores by default. Keep them in the parsed request
# ("dangerous") so the capture sees them; pre_request then removes them from what builds the WSGI
# environ, where X_Forwarded_For would otherwise merge into X-Forwarded-For.
header_map = "dangerous"
# gunicorn 27 puts its control socket at one fixed path per user; nothing here uses it.
control_socket_disable = True
accesslog = "-"
errorlog = "-"


def on_starting(server) -> None:
    """Create or upgrade the schema and the operator's fixed bins once, before workers start."""
    from flask_migrate import upgrade

    from . import bins, create_app

    app = create_app()
    with app.app_context():
        upgrade()
        bins.ensure_fixed(app.config["HOOKSCOPE_FIXED_BINS"])


def post_worker_init(worker) -> None:
    """Send the app's own log lines to stderr beside gunicorn's; start pruning expired bins."""
    import logging
    import sys

    from . import janitor

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        logging.Formatter("[%(asctime)s] [%(process)d] [%(levelname)s] %(message)s")
    )
    logger = logging.getLogger("hookscope")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the migrations' logging setup gave the root logger a handler too
    janitor.start(worker.wsgi)


def pre_request(worker, req) -> None:
    """Keep the header list exactly as received (order, duplicates, underscores) for the capture."""
    setattr(req.body, RAW_HEADERS_ATTR, tuple(req.headers))
    setattr(req.body, CLOSE_CONNECTION_ATTR, req.force_close)
    req.headers = [(name, value) for name, value in req.headers if "_" not in name]
