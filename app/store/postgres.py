"""The PostgreSQL capture writer: a batch in two round trips, through the writer's own connection.

Bins' rows locked by one process make every other process writing to them wait, for as long as
the transaction lasts, round trips included; and a reply waits for this process's busy event loop
to get back to the writer before the next statement goes out. So the first round trip locks and
numbers, the ingest protection is judged against the rows as locked, and the second sends the
inserts, retention, renewal and COMMIT together (a pipeline when the batch is small).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

from app.store import answers, batch_rows
from app.store import batch as batches
from app.store.answers import AnswerNote
from app.store.batch import NUMBERED_COLUMNS, BinBatch, Numbered, Pending
from app.store.errors import Stale, StorageUnavailable, db_errors, discard
from app.store.writer import Writer

log = logging.getLogger("hookscope.store")
# Batches with up to this many body bytes are sent as one pipeline. psycopg 3.3's pipeline hangs
# on messages of ~16 MiB (a send left unflushed while it waits for the reply).
PIPELINE_BATCH_BYTES = 1024 * 1024

# First: lock the rows in id order (so two processes writing batches for the same bins never
# deadlock) and number the captures.
_NUMBER = f"""
WITH locked AS MATERIALIZED (SELECT id FROM bins WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE)
UPDATE bins SET last_seq = bins.last_seq + v.n, request_count = bins.request_count + v.n,
                stored_bytes = bins.stored_bytes + v.b, last_capture_at = v.at
FROM locked JOIN unnest(%(ids)s::text[], %(counts)s::int[], %(sizes)s::bigint[],
                        %(ats)s::timestamp[]) AS v(id, n, b, at) USING (id)
WHERE bins.id = locked.id
RETURNING bins.id, {", ".join(f"bins.{column}" for column in NUMBERED_COLUMNS)}
"""  # noqa: S608 - column names from app/store/batch.py
# Then, sent together with COMMIT: the requests (ids from their sequence), their payloads (each
# finds its request's id through the (bin_id, seq) index; the search trigger fires per row), and
# per bin, retention (after the inserts: a burst bigger than the limit drops its own oldest)
# with the counters it changes and the renewed expiry, all in one statement.
_INSERT_REQUESTS = """
INSERT INTO requests (bin_id, seq, method, path, query_string, content_type, body_size,
                      remote_addr, received_at, status, rejected, delivery_id, stored_bytes,
                      pinned)
SELECT bin_id, seq, method, path, query_string, content_type, body_size, remote_addr,
       received_at, status, rejected, delivery_id, stored_bytes, false
FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[],
            %s::text[], %s::timestamp[], %s::int[], %s::bool[], %s::text[], %s::bigint[])
  AS r(bin_id, seq, method, path, query_string, content_type, body_size, remote_addr,
       received_at, status, rejected, delivery_id, stored_bytes)
"""
# What the captures were answered, when it was not the default (each finds its request as the
# payloads do).
_INSERT_ANSWERS = """
INSERT INTO answers (request_id, record, sent_at)
SELECT (SELECT id FROM requests WHERE requests.bin_id = a.bin_id AND requests.seq = a.seq),
       record, sent_at
FROM unnest(%s::text[], %s::int[], %s::text[], %s::timestamp[]) AS a(bin_id, seq, record, sent_at)
"""
_INSERT_PAYLOADS = """
INSERT INTO payloads (request_id, url, http_version, headers, body)
SELECT (SELECT id FROM requests WHERE requests.bin_id = p.bin_id AND requests.seq = p.seq),
       url, http_version, headers, body
FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::json[], %b::bytea[])
  AS p(bin_id, seq, url, http_version, headers, body)
"""
# Auto-forward tries, due at once and leased to this process; each id with its capture.
_INSERT_FORWARDS = """
WITH ins AS (
  INSERT INTO attempts (request_id, bin_id, kind, target, method, try_number, state, due_at,
                        lease_until, reason, message, response_truncated, edited)
  SELECT (SELECT id FROM requests WHERE requests.bin_id = f.bin_id AND requests.seq = f.seq),
         bin_id, 'forward', target, method, 1, 'pending', due_at, lease_until, '', '', false,
         false
  FROM unnest(%s::text[], %s::int[], %s::text[], %s::text[], %s::timestamp[], %s::timestamp[])
    AS f(bin_id, seq, target, method, due_at, lease_until)
  RETURNING id, request_id, target
)
SELECT ins.id, r.bin_id, r.seq, ins.target FROM ins JOIN requests r ON r.id = ins.request_id
"""
# Retention drops a bin's oldest unpinned requests but the newest: the ``excess`` oldest
# (by_count), and as many more as free ``bytes_excess`` bytes (by_bytes: how many is unknown,
# so it walks them one index probe at a time and stops as soon as enough are found).
_KEEP = """
WITH RECURSIVE v AS (
  SELECT * FROM unnest(%s::text[], %s::int[], %s::bigint[], %s::int[], %s::timestamp[])
    AS v(bin_id, excess, bytes_excess, keep, expires_at)
), by_count AS (
  SELECT oldest.id FROM v CROSS JOIN LATERAL (
    SELECT id FROM requests
    WHERE requests.bin_id = v.bin_id AND NOT requests.pinned AND requests.seq <> v.keep
    ORDER BY requests.seq LIMIT v.excess
  ) AS oldest
), by_bytes AS (
  SELECT v.bin_id, oldest.id, oldest.seq, oldest.stored_bytes AS freed
  FROM v CROSS JOIN LATERAL (
    SELECT id, seq, stored_bytes FROM requests
    WHERE requests.bin_id = v.bin_id AND NOT requests.pinned AND requests.seq <> v.keep
    ORDER BY requests.seq LIMIT 1
  ) AS oldest
  WHERE v.bytes_excess > 0
  UNION ALL
  SELECT b.bin_id, later.id, later.seq, b.freed + later.stored_bytes
  FROM by_bytes AS b JOIN v USING (bin_id) CROSS JOIN LATERAL (
    SELECT id, seq, stored_bytes FROM requests
    WHERE requests.bin_id = b.bin_id AND NOT requests.pinned AND requests.seq <> v.keep
      AND requests.seq > b.seq
    ORDER BY requests.seq LIMIT 1
  ) AS later
  WHERE b.freed < v.bytes_excess
), gone AS (
  DELETE FROM requests WHERE id IN (SELECT id FROM by_count UNION SELECT id FROM by_bytes)
  RETURNING bin_id, seq, stored_bytes
), counted AS (
  SELECT bin_id, count(*) AS n, sum(stored_bytes) AS b FROM gone GROUP BY bin_id
), kept AS (
  UPDATE bins SET request_count = bins.request_count - coalesce(counted.n, 0),
                  stored_bytes = bins.stored_bytes - coalesce(counted.b, 0),
                  expires_at = coalesce(v.expires_at, bins.expires_at)
  FROM v LEFT JOIN counted USING (bin_id)
  WHERE bins.id = v.bin_id AND (counted.n IS NOT NULL OR v.expires_at IS NOT NULL)
)
SELECT bin_id, seq, stored_bytes FROM gone ORDER BY seq
"""


class PostgresWriter(Writer):
    def __init__(
        self, engine: Any, busy_timeout_ms: int = 30_000, bin_max_bytes: int | None = None
    ) -> None:
        super().__init__(engine, busy_timeout_ms, bin_max_bytes)
        self._own: Any = None

    def write_own(self, batch: list[Pending]) -> None:
        """Store the batch through the writer's own connection (one writer per process).

        A pooled connection is pinged at every checkout, two round trips more a batch (BEGIN,
        SELECT 1). The writer keeps one connection instead, in autocommit mode (its batches say
        BEGIN themselves). It replaces the connection when the server has ended it while idle
        (``_idle_and_open``), or when a batch's first round trip finds it dead: nothing can have
        been stored then, so the batch goes again, as a ping would have made it.
        """
        if self._own is not None and not _idle_and_open(self._own.dbapi_connection):
            log.warning("the database closed the writer's connection; connecting again")
            self._own.invalidate()
            self._own = None
        for _ in range(2):
            reused = self._own is not None
            if not reused:
                self._own = self._connect_own()
            try:
                self.write(self._own, batch)
                if batches.body_bytes(batch) > PIPELINE_BATCH_BYTES:
                    # libpq's send buffer grows to the biggest message sent and never shrinks:
                    # kept, the connection would hold on to a 25 MiB body's worth for good.
                    self._own.close()
                    self._own = None
                return
            except Stale as err:
                self._own = None
                if not reused:
                    raise StorageUnavailable(str(err.__cause__)) from err
                log.warning("the writer's connection was closed; connecting again")
            except BaseException:
                self._own = None  # write() invalidated it
                raise

    def write_notes_own(self, notes: list[AnswerNote]) -> bool:
        """Store what captures were answered through the writer's own connection."""
        if self._own is None or not _idle_and_open(self._own.dbapi_connection):
            if self._own is not None:
                self._own.invalidate()
            self._own = self._connect_own()
        try:
            self.write_notes(self._own, notes)
        except BaseException:
            self._own = None  # write_notes dropped it
            raise
        return True

    def write_notes(self, conn: Any, notes: list[AnswerNote]) -> None:
        """Store what captures were answered, in one transaction (one round trip)."""
        pg = conn.dbapi_connection
        try:
            cur = pg.cursor()
            with pg.pipeline():
                if pg.autocommit:
                    cur.execute("BEGIN")
                for sql, rows in answers.statements(notes, lambda moment: moment, "%s"):
                    cur.executemany(sql, rows)
                cur.execute("COMMIT")
        except db_errors() as err:
            discard(conn)
            raise StorageUnavailable(str(err)) from err

    def _connect_own(self) -> Any:
        conn = self.checkout()
        conn.detach()  # ours: closed when dropped, never back in the pool in autocommit mode
        try:
            conn.rollback()  # the ping's transaction
            conn.dbapi_connection.autocommit = True
        except Exception as err:
            conn.invalidate()
            raise StorageUnavailable(str(err)) from err
        return conn

    def write(self, conn: Any, batch: list[Pending]) -> None:
        """Store the batch in one transaction and set each item's result, or raise for all."""
        try:
            self._write(conn.dbapi_connection, batch)  # commits
        except BaseException as err:
            self.failed(conn, batch, err)

    def _write(self, pg: Any, batch: list[Pending]) -> None:
        pipelined = batches.body_bytes(batch) <= PIPELINE_BATCH_BYTES
        grouped = batches.by_bin(batch)
        numbering = sorted(batches.numbering(grouped))
        cur, keep, fwd = pg.cursor(), pg.cursor(), pg.cursor()
        with pg.pipeline() if pipelined else nullcontext():
            try:
                if pg.autocommit:
                    cur.execute("BEGIN")
                bin_ids, counts, sizes, ats = batch_rows.columns(numbering)
                numbered = {"ids": bin_ids, "counts": counts, "sizes": sizes, "ats": ats}
                cur.execute(_NUMBER, numbered)
                taken = {r[0]: Numbered.from_row(r[1:]) for r in cur.fetchall()}  # round trip 1
            except db_errors() as err:
                if pg.broken:
                    raise Stale from err
                raise
            bins, stored = batches.judge(grouped, taken, self.answerer, self.bin_max_bytes)
            summaries, requests, payloads = [], [], []
            for done in stored:
                described, request, payload = batch_rows.row(done)
                summaries.append(described)
                requests.append((done.item.bin_id, done.seq, *request))
                payloads.append((done.item.bin_id, done.seq, *payload))
            if stored:
                cur.execute(_INSERT_REQUESTS, batch_rows.columns(requests))
                # Big bodies one to a statement, as they arrived: no array of them all.
                for part in [payloads] if pipelined else [[p] for p in payloads]:
                    cur.execute(_INSERT_PAYLOADS, batch_rows.columns(part))
                answered = [
                    (done.item.bin_id, done.seq, record, sent_at and batches.naive_utc(sent_at))
                    for done, record, sent_at in batch_rows.answer_rows(stored)
                ]
                if answered:
                    cur.execute(_INSERT_ANSWERS, batch_rows.columns(answered))
            forwards = batch_rows.forward_rows(stored, self.forward_lease_seconds)
            if forwards:
                fwd.execute(
                    _INSERT_FORWARDS,
                    batch_rows.columns(
                        [
                            (done.item.bin_id, done.seq, target, done.item.snap.method, due, until)
                            for done, target, due, until in forwards
                        ]
                    ),
                )
            retention = _retention(bins)
            if retention:
                keep.execute(_KEEP, batch_rows.columns(retention))
            # A statement, not pg.commit(), so that it goes out with the ones above: commit()
            # in a pipeline waits for their results, and leaving the pipeline costs a round trip
            # more. Either way nothing is answered before the reply to COMMIT is in.
            cur.execute("COMMIT")
        dropped: dict[str, list[int]] = {}
        freed: dict[str, int] = {}
        for bin_id, seq, size in keep.fetchall() if retention else ():
            dropped.setdefault(bin_id, []).append(seq)
            freed[bin_id] = freed.get(bin_id, 0) + size
        batches.settle(bins, stored, summaries, dropped, freed)
        if forwards:
            ids = {(b, seq, target): i for i, b, seq, target in fwd.fetchall()}
            batch_rows.note_forwards(
                forwards, [ids[(d.item.bin_id, d.seq, t)] for d, t, _, _ in forwards]
            )


def _retention(bins: list[BinBatch]) -> list[tuple]:
    """Per bin, what _KEEP needs: how many to drop and how many bytes to free, the newest seq
    (never dropped), and the renewed expiry when one is due (None otherwise). Bins with nothing
    to do are left out."""
    out = []
    for bin_ in bins:
        renewed = bin_.numbered.renewed_expiry(bin_.items[-1].snap.received_at)
        excess, bytes_excess = max(bin_.excess, 0), max(bin_.bytes_excess, 0)
        if excess or bytes_excess or renewed is not None:
            out.append((bin_.bin_id, excess, bytes_excess, bin_.numbered.last_seq, renewed))
    return out


def _idle_and_open(pg: Any) -> bool:
    """Tell whether an idle psycopg connection can take the next batch. Between transactions
    the server sends nothing unasked: what it sends when it ends the connection (a restart, an
    administrator, an idle timeout) is an error, then the end of the stream. A batch that met
    the error first would fail before it learned the connection was gone."""
    from app.store import pgwait

    return not (pg.broken or pg.closed or pgwait.readable(pg.pgconn.socket))
