"""gunicorn settings and hooks: ``gunicorn -c python:app.runtime.serving 'app:create_app()'``.

One gevent worker (gevent's pywsgi server, adapted in app/ingest/server.py) serves HTTP and
WebSocket; the migrations run once, in the master, before any worker starts.
"""

from __future__ import annotations

import ctypes
import gc
import os

from app.config import server_settings
from app.runtime import metrics

_settings = server_settings()
# Metrics from every worker: prometheus-client's multiprocess mode, which must be chosen before
# anything imports it (app/runtime/metrics.py). A folder made here is removed at exit.
_metrics_dir = metrics.prepare(_settings.metrics_dir) if _settings.metrics else ""

# Patch the master too: gunicorn's gevent workers patch only after the fork, and by then the
# migrations run in on_starting have imported ssl-using modules unpatched.
from gevent import monkey  # noqa: E402 - must run before anything imports ssl or socket users

monkey.patch_all()

bind = [f"{_settings.host}:{_settings.port}"]
# gevent's pywsgi, adapted for capturing (app/ingest/server.py). Thread workers are not offered:
# each open page's WebSocket would hold a thread, and gunicorn's own parser does not keep headers
# as sent.
worker_class = "app.ingest.server.Worker"
workers = _settings.workers
worker_connections = _settings.worker_connections
# A WebSocket or a slow upload keeps a greenlet busy, not the worker: the timeout is a heartbeat.
timeout = 30
graceful_timeout = 10
keepalive = 5
# Request limits (64 KiB request line, 200 header fields of 16 KiB each) are applied by the worker
# itself, app/ingest/server.py: gunicorn's limit_request_* settings do not reach its pywsgi parser.
# Forwarded headers are handled by the app (HOOKSCOPE_PROXY_COUNT), not trusted by gunicorn.
forwarded_allow_ips = ""
# gunicorn 27 puts its control socket at one fixed path per user; nothing here uses it.
control_socket_disable = True
# Captures log one structured line each (app/ingest/gate.py); other requests get an access line.
accesslog = "-"
errorlog = "-"
if _settings.log_format == "json":
    logger_class = "app.runtime.jsonlogs.Logger"


def on_starting(server) -> None:
    """Warn about doubtful settings; create or upgrade the schema and the operator's fixed bins,
    once, before workers start."""
    import sys

    from flask_migrate import upgrade

    from app import config, create_app, internals, logs
    from app.ingest import body_input, sending
    from app.ingest import server as ingest_server  # not to hide ``server``, gunicorn's arbiter
    from app.live import backlog, fanout, resilient
    from app.runtime import exporter
    from app.store import bins, engine

    logs.install(_settings.log_format, sys.stderr)  # the master's own lines (internals' too)
    # Before anything runs on a library that lacks what it relies on.
    internals.enforce(
        ingest_server.RELIANCES
        + body_input.RELIANCES
        + sending.RELIANCES
        + fanout.RELIANCES
        + backlog.RELIANCES
        + resilient.RELIANCES
        + engine.RELIANCES
        + exporter.RELIANCES
    )

    # This app serves nothing, so it gets no rate limiter: flask-limiter's in-memory storage
    # starts a Timer thread, which every forked worker inherited and died on (a traceback per
    # boot).
    app = create_app({"RATELIMIT_ENABLED": False})
    for message in config.warnings(app.config):
        server.log.warning(message)
    with app.app_context():
        upgrade()
        bins.ensure_fixed(app.config["HOOKSCOPE_FIXED_BINS"])


# glibc's malloc serves blocks this big or bigger from mappings of their own, given back to the
# kernel when freed. Left to itself it raises that threshold to the size of each mapped block
# freed (up to 32 MiB), after which a big body lands in the heap and the heap keeps the memory:
# after five 25 MiB captures the worker held 52 MiB more than before them, and peaked at 2.1x a
# body instead of 1.1x (bench/README.md, "Figures (session 5)"). Setting it fixes it.
BIG_ALLOCATION = 1024 * 1024
M_MMAP_THRESHOLD = -3  # malloc.h


def map_big_allocations() -> bool:
    """Keep big blocks (bodies) out of glibc's heap; False where the C library is not glibc."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, BIG_ALLOCATION))


def post_worker_init(worker) -> None:
    """Send the app's own log lines to stderr beside gunicorn's; start pruning expired bins and
    adding usage counts; give big bodies' memory back when they are stored."""
    import logging
    import sys

    from app import logs
    from app.ingest import tally
    from app.runtime import exporter, forwarder, janitor, jsonlogs

    # Every capture logs a line: skip what no line shows (the logging HOWTO's "Optimization"
    # section): caller lookup, thread and multiprocessing names. gunicorn's lines use the pid.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    logs.install(_settings.log_format, sys.stderr)
    if _settings.log_format == "json":
        jsonlogs.format_handlers(logging.getLogger())  # Flask's and the migrations' lines
    logger = logging.getLogger("hookscope")
    if not map_big_allocations():
        logger.warning(
            "not glibc: big bodies' memory may stay with the worker after they are stored"
        )
    janitor.start(worker.wsgi)
    tally.start(worker.wsgi)
    forwarder.start(worker.wsgi)
    exporter.start()  # when metrics are on
    # Everything made so far (modules, the app, SQLAlchemy's metadata: ~130,000 objects) lives as
    # long as the worker. Frozen, the collector's full passes skip it: each one walked all of it,
    # tens of milliseconds during which no capture is answered (bench/README.md, "live1").
    gc.collect()
    gc.freeze()
    logger.info("worker [%d] serving", os.getpid())


def worker_exit(server, worker) -> None:
    """Let auto-forward sends in flight finish and hand back the tries not yet sent, so the
    next worker resumes them at once rather than when their lease runs out; add the worker's last
    usage counts (a graceful stop loses none) and what it counted for the metrics."""
    from app.ingest import tally
    from app.runtime import exporter, forwarder

    running = forwarder.forwarder_of(worker.wsgi) if worker.wsgi else None
    if running is not None:
        running.stop(wait_seconds=graceful_timeout / 2)
    if _settings.metrics:
        exporter.flush()
    app = getattr(worker, "wsgi", None)
    if app is None or not hasattr(app, "extensions"):
        return
    try:
        tally.flush(app)
    except Exception:  # leaving anyway: never turn a clean exit into a crash
        app.logger.exception("adding the last usage counts failed")


def child_exit(server, worker) -> None:
    """In the master: a dead worker's watchers are no longer watching."""
    if _settings.metrics:
        metrics.worker_gone(worker.pid)


def on_exit(server) -> None:
    """Remove the metrics folder this start made."""
    if _metrics_dir and not _settings.metrics_dir:
        metrics.forget(_metrics_dir)
