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

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from flask import Flask

from app.domain.capture import Snapshot
from app.ingest import respond
from app.ingest.counters import Counter, counter_for
from app.ingest.respond import DEFAULT_RESPONDER, Answer, RequestView, Responder, handshakes
from app.ingest.respond.answer import NO_BODY_STATUSES
from app.store.answers import AnswerNote, sent_note
from app.store.batch import Recorded

log = logging.getLogger("hookscope.capture")
# Stored settings that fail the checks, remembered (and logged) once each, per process.
MAX_BROKEN = 64
# Answers whose record text is kept (see Answering.record_text).
MAX_RECORDS = 512


def framing(status: int, body_size: int, seq: int) -> list[tuple[str, str]]:
    """The headers the gate adds to an answer's own: Content-Length (not for 204 and 304) and
    X-Hookscope-Seq. Not stored with the answer's record; the detail API adds them back."""
    seq_header = ("X-Hookscope-Seq", str(seq))
    if status in NO_BODY_STATUSES:
        return [seq_header]
    return [("Content-Length", str(body_size)), seq_header]


@dataclass(frozen=True, slots=True)
class Custom:
    """A capture to be answered with something other than the default ``200 ok``.

    ``record`` is the JSON text of the answer's record (``Answer.to_record()``), stored as is.
    """

    answer: Answer
    bin_id: str
    seq: int
    record: str

    def headers(self) -> list[tuple[str, str]]:
        """The headers to send: the answer's own, then the gate's (``framing``)."""
        answer = self.answer
        return answer.wsgi_headers() + framing(answer.status, len(answer.body), self.seq)

    def note(self, sent_at: datetime | None) -> AnswerNote:
        """Note what was answered, and when it went out (None: not yet, after a delay)."""
        answer = self.answer
        status = 0 if answer.hang_up else answer.status  # 0: closed without an answer
        return AnswerNote(self.bin_id, self.seq, status, answer.delivery_id, self.record, sent_at)

    def sent(self, sent_at: datetime) -> AnswerNote:
        """Note when a delayed answer went out."""
        return sent_note(self.bin_id, self.seq, sent_at)


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
        # Records of answers by identity: a rule's static answer is one object, used again and
        # again, so its JSON text is made once.
        self._records: dict[int, tuple[Answer, str]] = {}

    def custom(self, answer: Answer, bin_id: str, seq: int) -> Custom:
        """Wrap a custom answer with its record for one capture."""
        return Custom(answer, bin_id, seq, self.record_text(answer))

    def record_text(self, answer: Answer) -> str:
        """The JSON text of an answer's record, made once per answer object."""
        known = self._records.get(id(answer))
        if known is not None and known[0] is answer:
            return known[1]
        text = json.dumps(answer.to_record(), ensure_ascii=False, separators=(",", ":"))
        if len(self._records) >= MAX_RECORDS:
            self._records.clear()  # rendered answers come and go; the static ones come back
        self._records[id(answer)] = (answer, text)
        return text

    def answer(self, recorded: Recorded, snap: Snapshot) -> Answer:
        """Choose and make the answer to a stored capture (``respond.DEFAULT`` for most)."""
        stored = recorded.settings.response_settings
        if stored is None:
            # A bin with no settings: today's answer, unless this could be a handshake, which a
            # new bin passes by itself. Most captures stop here, having built nothing.
            if not handshakes.might_be(snap.method, snap.query_string, snap.body):
                return respond.DEFAULT
            responder = DEFAULT_RESPONDER
        else:
            responder = self.responder(stored)
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
