"""Choose what a capture is answered, from the settings its own transaction saw.

The answer is chosen inside the capture's transaction, right after the bin's row is locked and
the capture numbered (``decide``, the writer's answerer: app/store/batch.py): from that row's
response settings, so a change made by another process is never answered stale, and with the
capture's seq known (app/ingest/respond/). What it was answered is stored in the same
transaction, unless it was the default ``200 ok``. A bin with no settings gets
``respond.DEFAULT`` unless the request is a verification handshake.

"Fail the first N" needs a count shared by every process (app/ingest/counters.py: Redis INCR),
which is not taken while the database's lock is held: such a capture is answered just after the
commit (``answer``), from the same settings, and what it got is noted afterwards
(app/store/answers.py). So is when a delayed answer went out.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime

from flask import Flask

from app.domain import clock
from app.domain.capture import Snapshot
from app.domain.settings import BinSettings
from app.ingest import respond
from app.ingest.counters import Counter, counter_for
from app.ingest.respond import DEFAULT_RESPONDER, Answer, RequestView, Responder, handshakes
from app.ingest.respond.answer import NO_BODY_STATUSES
from app.store.answers import AnswerNote, sent_note
from app.store.batch import Decided, Recorded

log = logging.getLogger("hookscope.capture")
# Stored settings that fail the checks, remembered (and logged) once each, per process.
MAX_BROKEN = 64
# Answers whose record text and headers are kept (see Answering.prepared).
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

    ``record`` is the JSON text of the answer's record (``Answer.to_record()``); ``stored``
    tells whether the capture's transaction stored it already (else the gate notes it).
    """

    answer: Answer
    bin_id: str
    seq: int
    record: str
    own_headers: tuple[tuple[str, str], ...]  # the answer's headers as WSGI strings
    stored: bool = False

    def headers(self) -> list[tuple[str, str]]:
        """The headers to send: the answer's own, then the gate's (``framing``)."""
        answer = self.answer
        return [*self.own_headers, *framing(answer.status, len(answer.body), self.seq)]

    def note(self, sent_at: datetime | None) -> AnswerNote:
        """Note what was answered, and when it went out (None: not yet, after a delay)."""
        answer = self.answer
        status = 0 if answer.hang_up else answer.status  # 0: closed without an answer
        return AnswerNote(self.bin_id, self.seq, status, answer.delivery_id, self.record, sent_at)

    def sent(self, sent_at: datetime) -> AnswerNote:
        """Note when a delayed answer went out."""
        return sent_note(self.bin_id, self.seq, sent_at)


DEFAULT_DECIDED = Decided(200, None, None, None, respond.DEFAULT)


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
        self._records: dict[int, tuple[Answer, str, tuple[tuple[str, str], ...]]] = {}

    def custom(self, answer: Answer, bin_id: str, seq: int, stored: bool = False) -> Custom:
        """Wrap a custom answer with its record for one capture."""
        _, record, headers = self.prepared(answer)
        return Custom(answer, bin_id, seq, record, headers, stored)

    def decide(
        self, settings: BinSettings, seq: int, snap: Snapshot, allowed: bool
    ) -> Decided | None:
        """Answer a capture inside its transaction; None when only ``answer`` can (a count)."""
        if not allowed:
            # Ingest protection first: a sender without the bin's credentials gets 401, whatever
            # the bin would answer (handshakes included).
            return self.decided(rejected(settings.ingest_auth))
        stored = settings.response_settings
        if stored is None:
            # A bin with no settings: today's answer, unless this could be a handshake, which a
            # new bin passes by itself. Most captures stop here, having built nothing.
            if not handshakes.might_be(snap.method, snap.query_string, snap.body):
                return DEFAULT_DECIDED
            responder = DEFAULT_RESPONDER
        else:
            responder = self.responder(stored)
        view = RequestView.of(snap, seq=seq)
        choice = responder.choose(view)
        if choice.counter_key is not None:
            return None
        return self.decided(responder.answer(view, choice))

    def decided(self, answer: Answer) -> Decided:
        if answer is respond.DEFAULT:
            return DEFAULT_DECIDED
        status = 0 if answer.hang_up else answer.status  # 0: closed without an answer
        # It goes out as soon as the transaction commits, or after its delay (noted then).
        sent_at = None if answer.delay_ms else clock.now()
        record = self.prepared(answer)[1]
        return Decided(status, answer.delivery_id, record, sent_at, answer)

    def prepared(self, answer: Answer) -> tuple[Answer, str, tuple[tuple[str, str], ...]]:
        """The answer with its record's JSON text and its WSGI headers, made once per answer
        object: a rule's static answer is one object, used again and again."""
        known = self._records.get(id(answer))
        if known is not None and known[0] is answer:
            return known
        text = json.dumps(answer.to_record(), ensure_ascii=False, separators=(",", ":"))
        if len(self._records) >= MAX_RECORDS:
            self._records.clear()  # rendered answers come and go; the static ones come back
        made = self._records[id(answer)] = (answer, text, tuple(answer.wsgi_headers()))
        return made

    def answer(self, recorded: Recorded, snap: Snapshot) -> Answer:
        """Answer a stored capture its transaction could not: one that keeps a count."""
        if not recorded.allowed:
            return rejected(recorded.settings.ingest_auth)
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
