"""The bare reference: a WSGI app that reads the body and answers 200 "ok", nothing else.

This module is both the app and its gunicorn settings. It is served as Hookscope is (one worker,
gevent's pywsgi, the bind and keep-alive of app/runtime/serving.py) but by gunicorn's own
``GeventPyWSGIWorker`` and without an access log: what the HTTP layer alone costs on this machine.
The benchmarks measure it in the same run as the app (bench/README.md), from ``bench/``:

    PORT=8001 ../.venv/bin/python -m gunicorn -c python:bare_app bare_app:app
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

bind = [f"127.0.0.1:{os.environ.get('PORT', '8001')}"]
worker_class = "gunicorn.workers.ggevent.GeventPyWSGIWorker"
workers = 1
worker_connections = 1000  # HOOKSCOPE_WORKER_CONNECTIONS' default
keepalive = 5
# gunicorn 25.1+ would otherwise open a control socket at one fixed path per user.
control_socket_disable = True

ANSWER = b"ok\n"
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(ANSWER)))]


def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
    """Read the request's body, then answer 200 "ok"."""
    environ["wsgi.input"].read()
    start_response("200 OK", HEADERS)
    return [ANSWER]
