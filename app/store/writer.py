"""What both capture writers share: a pooled connection, and failing a batch cleanly.

app/store/recorder.py picks the engine's writer (app/store/sqlite.py, app/store/postgres.py).
A writer stores a whole batch in one transaction and sets each capture's result, or raises for
all of them; it touches only the connection and the batch, so it may run in a native thread.
"""

from __future__ import annotations

from typing import Any, NoReturn

from sqlalchemy.engine import Engine

from app.store.answers import AnswerNote
from app.store.batch import Answerer, Pending
from app.store.errors import StorageUnavailable, db_errors, discard, pooled


class Writer:
    """Writes batches of captures through DB-API connections from the app's engine pool."""

    sqlite = False
    # How long the storing process holds a new capture's auto-forward tries (app/store/forwards.py).
    forward_lease_seconds = 65.0

    def __init__(
        self, engine: Engine, busy_timeout_ms: int = 30_000, bin_max_bytes: int | None = None
    ) -> None:
        self._engine = engine
        self._busy_timeout_ms = busy_timeout_ms
        # Set by the capture gate: answers each capture inside its transaction (batch.judge).
        self.answerer: Answerer | None = None
        # The operator's byte budget per bin (HOOKSCOPE_BIN_MAX_BYTES); caps each bin's own.
        self.bin_max_bytes = bin_max_bytes

    def checkout(self) -> Any:
        """A pooled DB-API connection (pinged first); StorageUnavailable when there is none."""
        return pooled(self._engine)

    def own(self, conn: Any) -> Any:
        """Tune a pooled connection for the writer's transactions (SQLite: its checkpoints)."""
        return conn

    def write(self, conn: Any, batch: list[Pending]) -> None:
        """Store the batch in one transaction and set each item's result, or raise for all."""
        raise NotImplementedError

    def write_notes(self, conn: Any, notes: list[AnswerNote]) -> None:
        """Store what captures were answered (app/store/answers.py) in one transaction."""
        raise NotImplementedError

    def write_notes_own(self, notes: list[AnswerNote]) -> bool:
        """Store notes through the writer's own connection, from the event loop: PostgreSQL
        waits cooperatively; SQLite only if the write lock is free (False when it is not)."""
        raise NotImplementedError

    def failed(self, conn: Any, batch: list[Pending], err: BaseException) -> NoReturn:
        """Give up on the batch: nothing of it was stored, the connection is dropped."""
        for item in batch:
            item.result = None
        discard(conn)
        if isinstance(err, db_errors()):
            raise StorageUnavailable(str(err)) from err
        raise err
