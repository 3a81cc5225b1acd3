"""The contract between the HTTP server (app/ingest/server.py) and the app: environ keys.

The server puts the request's header list, in the order received with duplicates and underscore
names kept, under ``RAW_HEADERS``; a callable that closes the connection after the response
instead of reading (draining) the rest of an unread body under ``ABANDON``; and one that gives
the connection's reusable body timer, ``(seconds, exception) -> gevent.Timeout`` to start before
reading the body and cancel after, under ``BODY_TIMER``; and one that makes the server close the
connection without sending any response (a rehearsed timeout: the app then returns an empty
body and never calls start_response), under ``HANG_UP``. Any other WSGI server (tests, the dev
server) sets none of them, and the app falls back to what plain WSGI offers.
"""

RAW_HEADERS = "hookscope.raw_headers"
ABANDON = "hookscope.abandon"
BODY_TIMER = "hookscope.body_timer"
HANG_UP = "hookscope.hang_up"


def abandon(environ: dict) -> None:
    """Close the connection after the answer instead of draining the rest of the body."""
    close = environ.get(ABANDON)
    if close is not None:
        close()
