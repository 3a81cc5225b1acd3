"""Domain operations on bins and their captured requests. No HTTP here."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from . import clock, keys, storage
from .extensions import db
from .models import Bin, CapturedRequest, Payload, SummaryDict
from .snapshot import Snapshot

# Generated ids are 26 characters of base32 (128 random bits). Fixed bins declared by an operator
# may use other ids, so lookups accept any URL-safe token up to 64 characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 200
NAME_MAX, DESCRIPTION_MAX = 200, 2000
# Expiry is renewed by activity, but written at most this often per bin (or each 1% of the period).
RENEW_EVERY = timedelta(hours=1)


class Invalid(ValueError):
    """A change to a bin that its rules refuse; the message says which and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Created:
    bin: Bin
    read_key: str | None


@dataclass(frozen=True)
class Recorded:
    summary: SummaryDict
    # Sequence numbers that retention dropped to make room.
    dropped: list[int] = field(default_factory=list)


def _expiry(expires_after: int | None, now: datetime) -> datetime | None:
    return None if expires_after is None else now + timedelta(seconds=expires_after)


def create(
    *,
    name: str = "",
    description: str = "",
    bin_id: str | None = None,
    read_key: str | None = None,
    public: bool = False,
    fixed: bool = False,
    settings: dict[str, object] | None = None,
) -> Created:
    """Create and store a new empty bin with a fresh read key (or the one given).

    ``settings`` takes what ``update_bin`` takes, checked before anything is stored.
    """
    config = current_app.config
    values = _validated(settings or {})
    read_key = None if public else (read_key or keys.new_key())
    now = clock.now()
    expires_after = None if fixed else config["HOOKSCOPE_BIN_TTL_SECONDS"]
    bin_ = Bin(
        id=bin_id or keys.new_id(),
        name=_text(name, NAME_MAX, "name"),
        description=_text(description, DESCRIPTION_MAX, "description"),
        created_at=now,
        read_key_hash=keys.digest(read_key) if read_key else None,
        last_seq=0,
        request_count=0,
        max_requests=config["HOOKSCOPE_DEFAULT_MAX_REQUESTS"],
        expires_after=expires_after,
        expires_at=_expiry(expires_after, now),
        fixed=fixed,
    )
    for column, value in values.items():
        setattr(bin_, column, value)
    storage.begin_write()
    db.session.add(bin_)
    db.session.commit()
    return Created(bin_, read_key)


def get(bin_id: str) -> Bin | None:
    """Return the bin with this id, or None."""
    if not ID_PATTERN.fullmatch(bin_id):
        return None
    return db.session.get(Bin, bin_id)


def _text(value: object, limit: int, what: str) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise Invalid(f"bad_{what}", f"{what} must be text of at most {limit} characters")
    return value


def _max_requests(value: object) -> int:
    ceiling = current_app.config["HOOKSCOPE_MAX_REQUESTS_CEILING"]
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= ceiling:
        raise Invalid(
            "bad_max_requests",
            f"max_requests must be a whole number from 1 to {ceiling} "
            "(the operator sets the ceiling with HOOKSCOPE_MAX_REQUESTS_CEILING)",
        )
    return value


def _expires_after(value: object) -> int | None:
    config = current_app.config
    if value is None:
        if not config["HOOKSCOPE_ALLOW_NEVER_EXPIRE"]:
            raise Invalid(
                "bad_expires_after",
                "this server does not keep bins forever (HOOKSCOPE_ALLOW_NEVER_EXPIRE)",
            )
        return None
    longest = config["HOOKSCOPE_MAX_BIN_TTL_SECONDS"]
    if not isinstance(value, int) or isinstance(value, bool) or not 60 <= value <= longest:
        raise Invalid(
            "bad_expires_after",
            f"expires_after must be seconds from 60 to {longest} "
            "(HOOKSCOPE_MAX_BIN_TTL_SECONDS), or null for never where allowed",
        )
    return value


def _ingest(value: object) -> tuple[str | None, str | None]:
    """Validate an ingest protection setting; return (kind, digest of the expected header)."""
    if value is None or value == {"type": "none"}:
        return None, None
    kind = value.get("type") if isinstance(value, dict) else None
    fields = {"basic": ("username", "password"), "bearer": ("token",)}.get(kind)
    if fields is None or not all(
        isinstance(value.get(f), str) and 0 < len(value[f]) <= 500 for f in fields
    ):
        raise Invalid(
            "bad_ingest_auth",
            'ingest_auth must be null, {"type": "basic", "username": "...", "password": "..."}'
            ' or {"type": "bearer", "token": "..."}',
        )
    if kind == "basic" and ":" in value["username"]:
        raise Invalid("bad_ingest_auth", "a Basic username cannot contain ':'")
    return kind, keys.digest(keys.authorization_value(kind, value))


def _validated(changes: dict[str, object]) -> dict[str, object]:
    """Check changes to a bin's settings and turn them into column values."""
    unknown = set(changes) - {
        "name",
        "description",
        "max_requests",
        "expires_after",
        "ingest_auth",
    }
    if unknown:
        raise Invalid("unknown_field", f"cannot change {', '.join(sorted(unknown))}")
    values: dict[str, object] = {}
    if "name" in changes:
        values["name"] = _text(changes["name"], NAME_MAX, "name")
    if "description" in changes:
        values["description"] = _text(changes["description"], DESCRIPTION_MAX, "description")
    if "max_requests" in changes:
        values["max_requests"] = _max_requests(changes["max_requests"])
    if "expires_after" in changes:
        values["expires_after"] = _expires_after(changes["expires_after"])
        values["expires_at"] = _expiry(values["expires_after"], clock.now())
    if "ingest_auth" in changes:
        values["ingest_auth"], values["ingest_secret_hash"] = _ingest(changes["ingest_auth"])
    return values


def update_bin(bin_: Bin, changes: dict[str, object]) -> Bin:
    """Apply the allowed changes (name, description, limits, expiry, ingest protection)."""
    values = _validated(changes)
    if not values:
        return bin_
    storage.begin_write()
    db.session.execute(update(Bin).where(Bin.id == bin_.id).values(**values))
    db.session.commit()
    db.session.refresh(bin_)
    return bin_


def delete_bin(bin_id: str) -> None:
    """Delete a bin with all its requests."""
    storage.begin_write()
    db.session.execute(delete(Bin).where(Bin.id == bin_id))
    db.session.commit()


def ingest_allowed(bin_: Bin, authorization: str | None) -> bool:
    """Tell whether a capture may pass the bin's ingest protection."""
    if bin_.ingest_auth is None or bin_.ingest_secret_hash is None:
        return True
    presented = keys.normalised_authorization(authorization or "")
    return keys.same(presented, bin_.ingest_secret_hash)


def record(
    bin_id: str, snap: Snapshot, *, status: int = 200, rejected: bool = False
) -> Recorded | None:
    """Store one captured request under the bin's next sequence number and commit.

    Retention drops the oldest unpinned requests beyond the bin's limit in the same transaction,
    never the one just stored. Returns a ``Recorded``, or None when the bin no longer exists.
    """
    storage.begin_write()
    row = db.session.execute(
        update(Bin)
        .where(Bin.id == bin_id)
        .values(last_seq=Bin.last_seq + 1, request_count=Bin.request_count + 1)
        .returning(Bin.last_seq, Bin.request_count, Bin.max_requests, Bin.expires_after)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if row is None:
        db.session.rollback()
        return None
    seq, count, limit, expires_after = row
    captured = CapturedRequest(
        bin_id=bin_id,
        seq=seq,
        method=snap.method,
        path=snap.path,
        query_string=snap.query_string,
        content_type=snap.content_type,
        body_size=len(snap.body),
        remote_addr=snap.remote_addr,
        received_at=snap.received_at,
        status=status,
        rejected=rejected,
        pinned=False,
    )
    captured.payload = Payload(
        url=snap.url, http_version=snap.http_version, headers=snap.headers, body=snap.body
    )
    db.session.add(captured)
    dropped = _drop_oldest(bin_id, count - limit, keep=seq) if count > limit else []
    _renew(bin_id, expires_after, snap.received_at)
    db.session.commit()
    return Recorded(captured.to_summary(), dropped)


def _drop_oldest(bin_id: str, excess: int, keep: int) -> list[int]:
    victims = db.session.execute(
        select(CapturedRequest.id, CapturedRequest.seq)
        .where(
            CapturedRequest.bin_id == bin_id,
            CapturedRequest.pinned.is_(False),
            CapturedRequest.seq != keep,
        )
        .order_by(CapturedRequest.seq)
        .limit(excess)
    ).all()
    if victims:
        db.session.execute(
            delete(CapturedRequest).where(CapturedRequest.id.in_([v.id for v in victims]))
        )
        db.session.execute(
            update(Bin)
            .where(Bin.id == bin_id)
            .values(request_count=Bin.request_count - len(victims))
        )
    return [v.seq for v in victims]


def _renew(bin_id: str, expires_after: int | None, now: datetime) -> None:
    """Push the bin's expiry out by its period, writing only when it moved enough to matter."""
    if expires_after is None:
        return
    target = now + timedelta(seconds=expires_after)
    slack = min(RENEW_EVERY, timedelta(seconds=expires_after / 100))
    db.session.execute(
        update(Bin)
        .where(Bin.id == bin_id, Bin.expires_at < target - slack)
        .values(expires_at=target)
        .execution_options(synchronize_session=False)
    )


def touch(bin_: Bin) -> None:
    """Renew a bin's expiry because someone looked at it (cheap: usually no write at all)."""
    if bin_.expires_after is None or bin_.expires_at is None:
        return
    now = clock.now()
    if bin_.expires_at >= now + timedelta(seconds=bin_.expires_after) - RENEW_EVERY:
        return
    storage.begin_write()
    _renew(bin_.id, bin_.expires_after, now)
    db.session.commit()
    db.session.refresh(bin_)


@dataclass(frozen=True)
class Page:
    requests: list[SummaryDict]
    next_before: int | None


def page(
    bin_id: str,
    *,
    limit: int = PAGE_LIMIT_DEFAULT,
    before: int | None = None,
    method: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Page:
    """List summaries newest first, keyset-paginated by sequence number, optionally filtered."""
    limit = max(1, min(limit, PAGE_LIMIT_MAX))
    query = select(CapturedRequest).where(CapturedRequest.bin_id == bin_id)
    if before is not None:
        query = query.where(CapturedRequest.seq < before)
    if method:
        query = query.where(CapturedRequest.method == method.upper())
    if since is not None:
        query = query.where(CapturedRequest.received_at >= since)
    if until is not None:
        query = query.where(CapturedRequest.received_at < until)
    rows = db.session.scalars(query.order_by(CapturedRequest.seq.desc()).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return Page([r.to_summary() for r in rows], rows[-1].seq if more else None)


def since(bin_id: str, after: int, limit: int) -> list[SummaryDict]:
    """Return up to ``limit`` of the newest summaries with ``seq > after``, oldest first."""
    rows = db.session.scalars(
        select(CapturedRequest)
        .where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq > after)
        .order_by(CapturedRequest.seq.desc())
        .limit(limit)
    ).all()
    return [r.to_summary() for r in reversed(rows)]


def find(bin_id: str, seq: int) -> CapturedRequest | None:
    """Return one captured request (summary columns only)."""
    return db.session.scalars(
        select(CapturedRequest).where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq == seq)
    ).one_or_none()


def payload_of(captured: CapturedRequest) -> Payload:
    """Load the headers and body of a captured request."""
    return db.session.get_one(Payload, captured.id)


def delete_request(bin_id: str, seq: int) -> bool:
    """Delete one request; tell whether it existed."""
    storage.begin_write()
    gone = db.session.execute(
        delete(CapturedRequest).where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq == seq)
    ).rowcount
    if gone:
        db.session.execute(
            update(Bin).where(Bin.id == bin_id).values(request_count=Bin.request_count - gone)
        )
    db.session.commit()
    return bool(gone)


def clear(bin_id: str, *, include_pinned: bool = False) -> int:
    """Delete a bin's requests (pinned ones stay unless asked); return how many went."""
    storage.begin_write()
    condition = CapturedRequest.bin_id == bin_id
    if not include_pinned:
        condition = condition & CapturedRequest.pinned.is_(False)
    gone = db.session.execute(delete(CapturedRequest).where(condition)).rowcount
    remaining = db.session.scalar(
        select(func.count()).select_from(CapturedRequest).where(CapturedRequest.bin_id == bin_id)
    )
    db.session.execute(update(Bin).where(Bin.id == bin_id).values(request_count=remaining))
    db.session.commit()
    return gone


def set_pinned(bin_id: str, seq: int, pinned: bool) -> SummaryDict | None:
    """Pin or unpin a request; return its summary, or None when there is no such request."""
    storage.begin_write()
    captured = find(bin_id, seq)
    if captured is None:
        db.session.rollback()
        return None
    captured.pinned = pinned
    db.session.commit()
    return captured.to_summary()


def prune(now: datetime | None = None) -> list[str]:
    """Delete every bin whose expiry has passed; return their ids."""
    now = now or clock.now()
    storage.begin_write()
    expired = db.session.scalars(
        select(Bin.id).where(Bin.expires_at.is_not(None), Bin.expires_at < now)
    ).all()
    if expired:
        db.session.execute(delete(Bin).where(Bin.id.in_(expired)))
    db.session.commit()
    return list(expired)


def ensure_fixed(declared: list[dict[str, str]]) -> list[str]:
    """Create each bin the operator declared that does not exist yet; return the ids created."""
    created = []
    for entry in declared:
        existing = get(entry["id"])
        if existing is not None:
            _align_fixed(existing, entry)
            continue
        try:
            create(
                bin_id=entry["id"],
                name=entry.get("name", ""),
                description=entry.get("description", ""),
                read_key=entry.get("read_key"),
                public="read_key" not in entry,
                fixed=True,
            )
        except IntegrityError:
            db.session.rollback()  # another process created it first
        else:
            created.append(entry["id"])
    return created


def _align_fixed(bin_: Bin, entry: dict[str, str]) -> None:
    """Make an existing bin match its declaration: the operator's key and no expiry."""
    key = entry.get("read_key")
    wanted = keys.digest(key) if key else None
    if (bin_.read_key_hash, bin_.fixed, bin_.expires_at) == (wanted, True, None):
        return
    storage.begin_write()
    db.session.execute(
        update(Bin)
        .where(Bin.id == bin_.id)
        .values(read_key_hash=wanted, fixed=True, expires_after=None, expires_at=None)
    )
    db.session.commit()
    db.session.refresh(bin_)
