"""Domain operations on bins and their captured requests. No HTTP here."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from app.domain import clock, keys
from app.domain.models import Bin, CapturedRequest, Payload, SummaryDict
from app.extensions import db
from app.store import engine as storage
from app.store import recorder as recording

ID_PATTERN = recording.ID_PATTERN
# Sequence numbers are 64-bit integers in every database; larger ones cannot name a request.
MAX_SEQ = 2**63 - 1
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 200
NAME_MAX, DESCRIPTION_MAX = 200, 2000


class Invalid(ValueError):
    """A change to a bin that its rules refuse; the message says which and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Created:
    bin: Bin
    read_key: str | None


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


def is_text(value: object, limit: int, minimum: int = 0) -> bool:
    """Tell whether ``value`` is storable text: a string of bounded length that is valid Unicode.

    JSON can carry lone surrogates (``"\\ud800"``), which no database or UTF-8 encoder accepts.
    """
    if not isinstance(value, str) or not minimum <= len(value) <= limit:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: object, limit: int, what: str) -> str:
    if not is_text(value, limit):
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


INGEST_FIELDS = {"basic": ("username", "password"), "bearer": ("token",)}


def _ingest(value: object) -> tuple[str | None, str | None]:
    """Validate an ingest protection setting; return (kind, digest of the expected header)."""
    if value is None or value == {"type": "none"}:
        return None, None
    kind = value.get("type") if isinstance(value, dict) else None
    fields = INGEST_FIELDS.get(kind) if isinstance(kind, str) else None
    if (
        fields is None
        or set(value) != {"type", *fields}
        or not all(is_text(value[f], 500, minimum=1) for f in fields)
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


def touch(bin_: Bin) -> None:
    """Renew a bin's expiry because someone looked at it (cheap: usually no write at all)."""
    now = clock.now()
    if not recording.due_for_renewal(bin_.expires_after, bin_.expires_at, now):
        return
    storage.begin_write()
    recording.renew(db.session.connection(), bin_.id, bin_.expires_after, bin_.expires_at, now)
    db.session.commit()
    db.session.refresh(bin_)


@dataclass(frozen=True)
class Page:
    requests: list[SummaryDict]
    next_before: int | None
    # Set when a search stopped on its work budget before filling the page (app/search/).
    searched_down_to: int | None = None


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
    if not 0 <= seq <= MAX_SEQ:
        return None
    return db.session.scalars(
        select(CapturedRequest).where(CapturedRequest.bin_id == bin_id, CapturedRequest.seq == seq)
    ).one_or_none()


def payload_of(captured: CapturedRequest) -> Payload:
    """Load the headers and body of a captured request."""
    return db.session.get_one(Payload, captured.id)


def delete_request(bin_id: str, seq: int) -> bool:
    """Delete one request; tell whether it existed."""
    if not 0 <= seq <= MAX_SEQ:
        return False
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
