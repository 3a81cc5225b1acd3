"""What captures were answered: notes written just after the captures' own transactions.

A capture is stored and committed first; only then is its answer chosen (from the settings that
transaction saw, with its sequence number known), and only after a delay does it go out. So what
was answered is written afterwards, by the recorder, in a transaction of its own: one note sets
the request's ``status`` and ``delivery_id`` and inserts its ``answers`` row; a delayed answer's
second note sets ``sent_at`` once it went out. Nobody waits for these writes, a batch of notes
is one short transaction, and when one fails the captures themselves are untouched (the log
says so). Captures answered the default ``200 ok`` write no note at all.
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
