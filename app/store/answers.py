"""What captures were answered, when their own transaction could not store it: notes.

Most answers are chosen and stored inside the capture's transaction (app/store/batch.py). Two
things are known only later: the answer of a capture that keeps a count (fail the first N,
counted in Redis after the commit), and when a delayed answer went out. Those are written
afterwards, by the recorder, in a transaction of their own: a note sets the request's
``status`` and ``delivery_id`` and inserts its ``answers`` row; a delayed answer's second note
sets ``sent_at``. Nobody waits for these writes, a batch of notes is one short transaction, and
when one fails the captures themselves are untouched (the log says so).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.store.batch import naive_utc


@dataclass(frozen=True, slots=True)
class AnswerNote:
    """One note: a capture's answer (``record``: its JSON text), or only when it went out
    (``record`` None). ``status`` 0: the connection was closed without an answer."""

    bin_id: str
    seq: int
    status: int
    delivery_id: str | None
    record: str | None
    sent_at: datetime | None


def sent_note(bin_id: str, seq: int, sent_at: datetime) -> AnswerNote:
    """Note when a delayed answer went out."""
    return AnswerNote(bin_id, seq, 0, None, None, sent_at)


_ANSWERED = "UPDATE requests SET status = ?, delivery_id = ? WHERE bin_id = ? AND seq = ?"
_RECORD = """
INSERT INTO answers (request_id, record, sent_at)
SELECT id, ?, ? FROM requests WHERE bin_id = ? AND seq = ?
ON CONFLICT (request_id) DO UPDATE SET record = excluded.record, sent_at = excluded.sent_at
"""
_SENT = """
UPDATE answers SET sent_at = ?
WHERE request_id = (SELECT id FROM requests WHERE bin_id = ? AND seq = ?)
"""


def statements(
    notes: list[AnswerNote], time: Callable[[datetime], Any], placeholder: str = "?"
) -> list[tuple[str, list[tuple]]]:
    """The statements that store ``notes``, each with its rows (for executemany), in order.

    ``time`` turns a moment into the form the engine's DateTime column takes.
    """
    answered, recorded, sent = [], [], []
    for note in notes:
        at = None if note.sent_at is None else time(naive_utc(note.sent_at))
        if note.record is None:
            sent.append((at, note.bin_id, note.seq))
        else:
            if note.status != 200 or note.delivery_id is not None:  # the insert wrote 200
                answered.append((note.status, note.delivery_id, note.bin_id, note.seq))
            recorded.append((note.record, at, note.bin_id, note.seq))
    # A delayed answer's second note comes after its first: the inserts go before the updates.
    pending = [(_ANSWERED, answered), (_RECORD, recorded), (_SENT, sent)]
    return [(sql.replace("?", placeholder), rows) for sql, rows in pending if rows]
