"""Choose what a stored capture is answered, from the settings its own transaction saw.

The capture is committed first; then its bin's response settings as that transaction read them
(``recorded.settings.response_settings``, so a change made by another process is never answered
stale) pick the answer, with the capture's sequence number known (app/ingest/respond/). A bin with
no settings gets ``respond.DEFAULT``, today's ``200 ok``, unless the request is a verification
handshake. "Fail the first N" counts through app/ingest/counters.py.

What was answered is noted for the capture (app/store/answers.py) unless it was the default:
``record`` is the answer's record with the headers as they went out, and ``sent_at`` when the
answer went out, after its delay.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Flask

from app.domain.capture import Snapshot
from app.ingest import respond
from app.ingest.counters import Counter, counter_for
from app.ingest.respond import DEFAULT_RESPONDER, Answer, RequestView, Responder
from app.ingest.respond.answer import NO_BODY_STATUSES
from app.store.answers import AnswerNote, answer_note, sent_note
from app.store.batch import Recorded

log = logging.getLogger("hookscope.capture")
# Stored settings that fail the checks, remembered (and logged) once each, per process.
MAX_BROKEN = 64


@dataclass(frozen=True, slots=True)
class Custom:
    """A capture to be answered with something other than the default ``200 ok``."""

    answer: Answer
    bin_id: str
    seq: int

    def headers(self, head: bool) -> list[tuple[str, str]]:
        """The answer's headers as sent: its own, Content-Length (not for 204 and 304), the seq."""
        answer = self.answer
        headers = answer.wsgi_headers()
        if answer.status not in NO_BODY_STATUSES:
            headers.append(("Content-Length", str(len(answer.body))))
        headers.append(("X-Hookscope-Seq", str(self.seq)))
        return headers

    def note(self, sent: list[tuple[str, str]] | None, sent_at: datetime | None) -> AnswerNote:
        """Note the answer: ``sent`` the headers as they went out (None for a hang-up)."""
        record: dict[str, Any] = dict(self.answer.to_record())
        if sent is not None:
            record["headers"] = [[name, _text(value)] for name, value in sent]
        return answer_note(self.bin_id, self.seq, record, sent_at)

    def sent(self, sent_at: datetime) -> AnswerNote:
        """Note when a delayed answer went out."""
        return sent_note(self.bin_id, self.seq, sent_at)


def _text(wsgi_value: str) -> str:
    """A WSGI header value (UTF-8 bytes as Latin-1 characters) as the text it carries."""
    if wsgi_value.isascii():
        return wsgi_value
    return wsgi_value.encode("latin-1").decode("utf-8", "replace")


# The 401 of a bin's ingest protection (app/domain/settings.py), in the gate's plain form.
_REJECTED_TEXT = b"this bin requires authentication\n"
_GATE_HEADERS = (
    ("Content-Type", "text/plain; charset=utf-8"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"),
)
_REJECTED = {
    kind: Answer(
        401,
        (*_GATE_HEADERS, ("WWW-Authenticate", challenge)),
        _REJECTED_TEXT,
        source="ingest_auth",
    )
    for kind, challenge in (("basic", 'Basic realm="hookscope"'), ("bearer", "Bearer"))
}


def rejected(kind: str | None) -> Answer:
    """The answer to a capture without the credentials the bin's ingest protection wants."""
    return _REJECTED["basic" if kind == "basic" else "bearer"]


class Answering:
    """One per process: the answer for each stored capture."""

    def __init__(self, app: Flask) -> None:
        self._seed: int | None = app.config["HOOKSCOPE_FAILURE_SEED"]
        self._redis_url: str = app.config["REDIS_URL"]
        self._counter: Counter | None = None
        self._broken: dict[str, None] = {}

    def answer(self, recorded: Recorded, snap: Snapshot) -> Answer:
        """Choose and make the answer to a stored capture (``respond.DEFAULT`` for most)."""
        stored = recorded.settings.response_settings
        responder = DEFAULT_RESPONDER if stored is None else self.responder(stored)
        view = RequestView.of(snap, seq=recorded.summary["seq"])
        choice = responder.choose(view)
        attempt = 0
        if choice.counter_key is not None:
            count = self.counter().incr(f"{recorded.summary['bin']}:{choice.counter_key}")
            attempt = count - 1
        return responder.answer(view, choice, attempt=attempt)

    def responder(self, stored: str) -> Responder:
        """The compiled settings; a bin's default when they no longer pass the checks."""
        if stored in self._broken:
            return DEFAULT_RESPONDER
        try:
            return respond.responder_for(stored, self._seed)
        except ValueError as err:  # Invalid, or text that is not JSON at all
            # Settings saved by an older version that a newer check refuses: answered as a new
            # bin would be until they are saved again (the bin's API answer says so too).
            log.warning("a bin's response settings no longer pass the checks: %s", err)
            if len(self._broken) >= MAX_BROKEN:
                self._broken.pop(next(iter(self._broken)))
            self._broken[stored] = None
            return DEFAULT_RESPONDER

    def counter(self) -> Counter:
        if self._counter is None:  # made in the worker process, on first use
            self._counter = counter_for(self._redis_url)
        return self._counter
