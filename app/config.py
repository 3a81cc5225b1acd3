"""Configuration: defaults, then environment variables, then the test mapping.

This is the only module that reads ``os.environ``. Every setting has the ``HOOKSCOPE_`` prefix
except the conventional ``DATABASE_URL``, ``SECRET_KEY`` and ``PORT``; the app config key is the
variable's name, so an error message can name what to change.
"""

from __future__ import annotations

import importlib.util
import os
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import limits

from app.outbound import guard

MIB = 1024 * 1024
DAY = 24 * 3600
FIXED_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
FIXED_BIN_KEYS = ("id", "read_key", "name", "description")
# One PostgreSQL search call (app/store/search/postgres.py), sized on a million-request bin so
# that the worst query found stays near 100-150 ms (bench/README.md).
SEARCH_CHUNK_REQUESTS = 50_000
SEARCH_BUDGET_MS = 150
# Storage budgets (README, "Running a public instance"): what one bin may keep, what the whole
# instance may keep, and the free space left on the SQLite file's volume.
BIN_MAX_BYTES = 100 * MIB
# The smallest byte budget a bin may have: room for a request's head and a small body.
MIN_BIN_MAX_BYTES = 16 * 1024
MAX_STORAGE_BYTES = 10 * 1024 * MIB
MIN_FREE_DISK_BYTES = 512 * MIB
STORAGE_CHECK_SECONDS = 5
# Operator tokens are compared as digests; short ones could be guessed.
MIN_TOKEN_CHARS = 16
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# Body bytes in flight per process by default (HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT, _in_flight).
IN_FLIGHT = 256 * MIB


class ConfigError(RuntimeError):
    """A setting has a value Hookscope cannot use; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _bounded(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = _int(env, name, default, low)
    if value > high:
        raise ConfigError(f"{name}={value} must be at most {high}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false")


def _fixed_bins(env: Mapping[str, str]) -> list[dict[str, str]]:
    """Read fixed bins from HOOKSCOPE_FIXED_BINS ("id[:read_key],...") and HOOKSCOPE_BINS_FILE."""
    declared: list[dict[str, str]] = []
    for item in env.get("HOOKSCOPE_FIXED_BINS", "").split(","):
        if item.strip():
            bin_id, _, key = item.strip().partition(":")
            declared.append({"id": bin_id, **({"read_key": key} if key else {})})
    path = env.get("HOOKSCOPE_BINS_FILE", "").strip()
    if path:
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ConfigError(f"HOOKSCOPE_BINS_FILE={path!r}: {err}") from None
        for entry in data.get("bin", []):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise ConfigError(f"HOOKSCOPE_BINS_FILE={path!r}: each [[bin]] needs an id")
            declared.append({k: str(v) for k, v in entry.items() if k in FIXED_BIN_KEYS})
    for entry in declared:
        if not FIXED_ID.fullmatch(entry["id"]):
            raise ConfigError(
                f"fixed bin id {entry['id']!r} must be 1-64 letters, digits, '-' or '_'"
            )
        if "read_key" in entry and len(entry["read_key"]) < 16:
            raise ConfigError(f"fixed bin {entry['id']!r}: read_key must be 16+ characters")
    return declared


def _rate(env: Mapping[str, str], name: str, default: str) -> str:
    """Read a rate limit like ``600/minute`` (``off`` turns it off; returned as "")."""
    raw = env.get(name, "").strip() or default
    if raw.lower() == "off":
        return ""
    try:
        limits.parse_many(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be like 600/minute, or off") from None
    return raw


def _token(env: Mapping[str, str], name: str) -> str:
    """Read an operator token (empty: not set); short ones are refused."""
    raw = env.get(name, "").strip()
    if raw and len(raw) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{name} must be a long random value of {MIN_TOKEN_CHARS}+ characters")
    return raw


def _header_name(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name, "").strip()
    if raw and not HEADER_NAME.fullmatch(raw):
        raise ConfigError(f"{name}={raw!r} must be a header name, like X-Forwarded-User")
    return raw


def _in_flight(env: Mapping[str, str]) -> int:
    """Body bytes one process holds at once, from a body's first byte until its commit.

    The default takes 25 bodies of the default 10 MiB limit at once (or thousands of ordinary
    webhooks of a few KiB): a worker holds ~1.1x a body while it is read and stored
    (bench/README.md), so captures in flight stay under ~300 MiB of its memory. Never less than
    one body of the largest size accepted.
    """
    largest = _int(env, "HOOKSCOPE_MAX_BODY_BYTES", 10 * MIB, minimum=1)
    value = _int(env, "HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT", max(IN_FLIGHT, largest), minimum=1)
    if value < largest:
        raise ConfigError(
            f"HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT={value} must be at least"
            f" HOOKSCOPE_MAX_BODY_BYTES ({largest}), or no body of the largest size could arrive"
        )
    return value


@dataclass(frozen=True)
class Rate:
    """A token bucket: ``burst`` captures at once, refilled at ``per_second``."""

    per_second: float
    burst: int
    text: str  # as configured, for messages


_BURST = re.compile(r"^(?P<rate>.+?)\s+burst\s+(?P<burst>[0-9_]+)$", re.IGNORECASE)


def parse_capture_rate(text: str) -> Rate:
    """Read ``600/minute`` or ``600/minute burst 3000`` (without a burst: the rate's own count).

    Raises ValueError for anything else.
    """
    text = " ".join(text.split())
    match = _BURST.match(text)
    rate, burst = (match["rate"], int(match["burst"].replace("_", ""))) if match else (text, None)
    items = limits.parse_many(rate)
    if len(items) != 1:
        raise ValueError("one rate only")
    item = items[0]
    burst = item.amount if burst is None else burst
    if item.amount < 1 or burst < 1:
        raise ValueError("a rate and a burst of at least 1")
    return Rate(item.amount / item.get_expiry(), burst, text)


def _capture_rate(env: Mapping[str, str], name: str, default: str) -> str:
    """Read a capture limit like ``1200/minute burst 6000`` (``off``: returned as "")."""
    raw = env.get(name, "").strip() or default
    if raw.lower() == "off":
        return ""
    try:
        return parse_capture_rate(raw).text
    except ValueError:
        raise ConfigError(
            f"{name}={raw!r} must be like 1200/minute, or 1200/minute burst 6000, or off"
        ) from None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """Read one of ``choices`` (the first is the default), in any case."""
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    return raw


LOG_FORMATS = ("text", "json")


def _public_url(env: Mapping[str, str]) -> str:
    raw = env.get("HOOKSCOPE_PUBLIC_URL", "").strip().rstrip("/")
    if raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"HOOKSCOPE_PUBLIC_URL={raw!r} must start with http:// or https://")
    return raw


_HOST = re.compile(r"([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:\d{1,5})?")


def _capture_host(env: Mapping[str, str], public_url: str) -> str:
    """Read HOOKSCOPE_CAPTURE_HOST: a host name, with a port when it is not the default."""
    raw = env.get("HOOKSCOPE_CAPTURE_HOST", "").strip().lower().rstrip(".")
    if not raw:
        return ""
    if not _HOST.fullmatch(raw):
        raise ConfigError(
            f"HOOKSCOPE_CAPTURE_HOST={raw!r} must be a host name such as hooks.example.com"
            " (with :port when it is not the scheme's default), without a scheme or path"
        )
    public_host = public_url.partition("://")[2].partition("/")[0].lower()
    if public_host and (public_host == raw or public_host.partition(":")[0] == raw):
        raise ConfigError(
            f"HOOKSCOPE_CAPTURE_HOST={raw!r} is HOOKSCOPE_PUBLIC_URL's host: the capture host"
            " must be another name, or pages and the API would have nowhere to be served"
        )
    return raw


def _seed(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    return None if not raw else _int(env, name, 0)


def _allow_list(env: Mapping[str, str]) -> guard.AllowList:
    raw = env.get(guard.ALLOW_SETTING, "")
    try:
        return guard.parse_allow_list(raw)
    except ValueError as err:
        raise ConfigError(f"{guard.ALLOW_SETTING}={raw!r}: {err}") from None


def _need_extra(module: str, extra: str, variable: str) -> None:
    """Refuse a setting whose driver is an optional extra that is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"{variable} needs the {extra} extra, which is not installed:"
            f" pip install 'hookscope[{extra}]' (make run installs it)"
        )


def _redis_url(env: Mapping[str, str]) -> str:
    url = env.get("REDIS_URL", "").strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL={url!r} must start with redis://, rediss:// or unix://")
    if url:
        _need_extra("redis", "redis", "REDIS_URL")
    return url


def instance_path(checkout: Path, env: Mapping[str, str] | None = None) -> str:
    """Where the SQLite file and the generated secret key live: HOOKSCOPE_INSTANCE_PATH, else
    ``instance/`` in a checkout of the project, else ``instance/`` in the current directory (an
    installed package has no checkout of its own to write into)."""
    env = os.environ if env is None else env
    raw = env.get("HOOKSCOPE_INSTANCE_PATH", "").strip()
    if raw:
        return str(Path(raw).expanduser().resolve())
    if (checkout / "pyproject.toml").is_file() and (checkout / "app").is_dir():
        return str(checkout / "instance")
    return str(Path.cwd() / "instance")


def _database_url(env: Mapping[str, str], instance_path: str) -> str:
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{Path(instance_path) / 'hookscope.db'}"
    # Heroku-style URLs name the dialect "postgres"; SQLAlchemy wants the driver spelled out.
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            _need_extra("psycopg", "postgres", "DATABASE_URL")
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _secret_key(env: Mapping[str, str], instance_path: str) -> str:
    """Use SECRET_KEY, or generate one once and keep it in the instance folder."""
    if env.get("SECRET_KEY"):
        return env["SECRET_KEY"]
    path = Path(instance_path) / "secret_key"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_hex(32)
    try:
        # O_EXCL: when several workers start at once, exactly one writes and the rest read it.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(key)
    return key


def from_environment(instance_path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the app configuration from defaults and environment variables."""
    env = os.environ if env is None else env
    return {
        "SECRET_KEY": _secret_key(env, instance_path),
        "SQLALCHEMY_DATABASE_URI": _database_url(env, instance_path),
        # A connection the database dropped (a restart, a failover) is replaced, not reused.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "HOOKSCOPE_RETRY_AFTER_SECONDS": _int(env, "HOOKSCOPE_RETRY_AFTER_SECONDS", 5, 1),
        "REDIS_URL": _redis_url(env),
        "HOOKSCOPE_MAX_BODY_BYTES": _int(env, "HOOKSCOPE_MAX_BODY_BYTES", 10 * MIB, minimum=1),
        "HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT": _in_flight(env),
        # A capture's whole body must arrive within this time, or it is refused with 408.
        "HOOKSCOPE_BODY_TIMEOUT_SECONDS": _int(env, "HOOKSCOPE_BODY_TIMEOUT_SECONDS", 60, 1),
        # A request's line and headers must arrive within this time of the connection starting
        # to wait for them (keep-alive idle time included), or the connection is closed.
        "HOOKSCOPE_HEAD_TIMEOUT_SECONDS": _int(env, "HOOKSCOPE_HEAD_TIMEOUT_SECONDS", 15, 1),
        "HOOKSCOPE_PROXY_COUNT": _int(env, "HOOKSCOPE_PROXY_COUNT", 0),
        "HOOKSCOPE_PUBLIC_URL": _public_url(env),
        # Captures only on this host, pages and the API only elsewhere (see the README).
        "HOOKSCOPE_CAPTURE_HOST": _capture_host(env, _public_url(env)),
        # Seeds the random draws of "fail N% of requests", for rehearsals that repeat exactly.
        "HOOKSCOPE_FAILURE_SEED": _seed(env, "HOOKSCOPE_FAILURE_SEED"),
        "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS": _int(
            env, "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS", 30_000, minimum=100
        ),
        "HOOKSCOPE_REPLAY_LIMIT": _int(env, "HOOKSCOPE_REPLAY_LIMIT", 500, minimum=1),
        # The live stream's bounds (app/live/watches.py, app/live/backlog.py): missed captures
        # are replayed a page at a time, each page asked for by the client once it has the last;
        # one connection watches a few bins, says watch a few times a minute, and is dropped
        # when what waits to be sent to it passes either cap (it catches up by seq when back).
        "HOOKSCOPE_REPLAY_PAGE": _int(env, "HOOKSCOPE_REPLAY_PAGE", 100, minimum=1),
        "HOOKSCOPE_WATCHES_PER_SOCKET": _int(env, "HOOKSCOPE_WATCHES_PER_SOCKET", 10, minimum=1),
        "HOOKSCOPE_WATCH_RATE": _rate(env, "HOOKSCOPE_WATCH_RATE", "20/minute"),
        "HOOKSCOPE_LIVE_QUEUE_BYTES": _int(env, "HOOKSCOPE_LIVE_QUEUE_BYTES", MIB, minimum=4096),
        "HOOKSCOPE_LIVE_QUEUE_PACKETS": _int(env, "HOOKSCOPE_LIVE_QUEUE_PACKETS", 2000, 10),
        # Full-text search on PostgreSQL (app/store/search/postgres.py): the requests one call
        # always searches through the GIN index, and how long it may go on past them.
        "HOOKSCOPE_SEARCH_CHUNK_REQUESTS": _int(
            env, "HOOKSCOPE_SEARCH_CHUNK_REQUESTS", SEARCH_CHUNK_REQUESTS, minimum=1
        ),
        "HOOKSCOPE_SEARCH_BUDGET_MS": _int(env, "HOOKSCOPE_SEARCH_BUDGET_MS", SEARCH_BUDGET_MS),
        "HOOKSCOPE_DEFAULT_MAX_REQUESTS": _int(env, "HOOKSCOPE_DEFAULT_MAX_REQUESTS", 1000, 1),
        "HOOKSCOPE_MAX_REQUESTS_CEILING": _int(env, "HOOKSCOPE_MAX_REQUESTS_CEILING", 10_000, 1),
        "HOOKSCOPE_BIN_TTL_SECONDS": _int(env, "HOOKSCOPE_BIN_TTL_SECONDS", 7 * DAY, 60),
        "HOOKSCOPE_MAX_BIN_TTL_SECONDS": _int(env, "HOOKSCOPE_MAX_BIN_TTL_SECONDS", 90 * DAY, 60),
        "HOOKSCOPE_ALLOW_NEVER_EXPIRE": _bool(env, "HOOKSCOPE_ALLOW_NEVER_EXPIRE", False),
        "HOOKSCOPE_PRUNE_INTERVAL_SECONDS": _int(env, "HOOKSCOPE_PRUNE_INTERVAL_SECONDS", 300, 0),
        "HOOKSCOPE_FIXED_BINS": _fixed_bins(env),
        # Storage budgets: per bin (a user may lower a bin's own), for the whole instance (0: no
        # budget), the free space kept on the SQLite file's volume (0: not checked), and how often
        # each process reads the instance's figures again.
        "HOOKSCOPE_BIN_MAX_BYTES": _int(
            env, "HOOKSCOPE_BIN_MAX_BYTES", BIN_MAX_BYTES, minimum=MIN_BIN_MAX_BYTES
        ),
        "HOOKSCOPE_MAX_STORAGE_BYTES": _int(env, "HOOKSCOPE_MAX_STORAGE_BYTES", MAX_STORAGE_BYTES),
        "HOOKSCOPE_MIN_FREE_DISK_BYTES": _int(
            env, "HOOKSCOPE_MIN_FREE_DISK_BYTES", MIN_FREE_DISK_BYTES
        ),
        "HOOKSCOPE_STORAGE_CHECK_SECONDS": _int(
            env, "HOOKSCOPE_STORAGE_CHECK_SECONDS", STORAGE_CHECK_SECONDS
        ),
        # Who may create bins and who may see them all: operator tokens, and the user an
        # authenticating proxy names (believed only from trusted proxies, HOOKSCOPE_PROXY_COUNT).
        "HOOKSCOPE_CREATE_TOKEN": _token(env, "HOOKSCOPE_CREATE_TOKEN"),
        "HOOKSCOPE_ADMIN_TOKEN": _token(env, "HOOKSCOPE_ADMIN_TOKEN"),
        "HOOKSCOPE_TRUSTED_USER_HEADER": _header_name(env, "HOOKSCOPE_TRUSTED_USER_HEADER"),
        # Floods: captures per sender address and per bin, bin creation per address.
        # Floods: captures per sender address (an IPv6 /64), per bin and in all, bin creation
        # per address, 404s on bins per address.
        "RATELIMIT_ENABLED": _bool(env, "HOOKSCOPE_RATE_LIMITS", True),
        # Token buckets (app/ingest/buckets.py): a burst taken whole, then the rate. Sized so
        # that two providers' bursts of 2,000 at once pass even through a tunnel, where every
        # sender is 127.0.0.1, while a flood is held to 20 a second (README, "Flood limits").
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": _capture_rate(
            env, "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS", "1200/minute burst 6000"
        ),
        "HOOKSCOPE_RATE_LIMIT_PER_BIN": _capture_rate(
            env, "HOOKSCOPE_RATE_LIMIT_PER_BIN", "1200/minute burst 3000"
        ),
        # All captures together, whoever sends: the ceiling a crowd of senders (many addresses,
        # many IPv6 /64s) meets. Above what the per-address and per-bin limits let through for
        # two providers' bursts at once.
        "HOOKSCOPE_RATE_LIMIT_GLOBAL": _capture_rate(
            env, "HOOKSCOPE_RATE_LIMIT_GLOBAL", "6000/minute burst 12000"
        ),
        # Pages and API calls on a bin answered 404 (no such bin, or a wrong key), per address.
        "HOOKSCOPE_RATE_LIMIT_NOT_FOUND": _rate(
            env, "HOOKSCOPE_RATE_LIMIT_NOT_FOUND", "120/minute"
        ),
        "HOOKSCOPE_RATE_LIMIT_CREATE": _rate(env, "HOOKSCOPE_RATE_LIMIT_CREATE", "60/hour"),
        "HOOKSCOPE_RATE_LIMIT_CSP_REPORTS": _rate(
            env, "HOOKSCOPE_RATE_LIMIT_CSP_REPORTS", "60/minute"
        ),
        "HOOKSCOPE_RATE_LIMIT_REPLAY": _rate(env, "HOOKSCOPE_RATE_LIMIT_REPLAY", "600/minute"),
        # Replay and auto-forward (app/outbound/): where they may send, and their bounds.
        "HOOKSCOPE_OUTBOUND_ALLOW": _allow_list(env),
        "HOOKSCOPE_OUTBOUND_CONNECT_TIMEOUT_SECONDS": _int(
            env, "HOOKSCOPE_OUTBOUND_CONNECT_TIMEOUT_SECONDS", 5, 1
        ),
        "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS": _int(
            env, "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS", 30, 1
        ),
        "HOOKSCOPE_OUTBOUND_MAX_RESPONSE_BYTES": _int(
            env, "HOOKSCOPE_OUTBOUND_MAX_RESPONSE_BYTES", MIB, 0
        ),
        "HOOKSCOPE_OUTBOUND_MAX_REDIRECTS": _int(env, "HOOKSCOPE_OUTBOUND_MAX_REDIRECTS", 0),
        # Outbound calls in flight per process, and per bin within a process.
        "HOOKSCOPE_OUTBOUND_CONCURRENCY": _int(env, "HOOKSCOPE_OUTBOUND_CONCURRENCY", 16, 1),
        "HOOKSCOPE_OUTBOUND_CONCURRENCY_PER_BIN": _int(
            env, "HOOKSCOPE_OUTBOUND_CONCURRENCY_PER_BIN", 4, 1
        ),
        # Auto-forward: tries per capture and target, and the first retry's delay (it doubles).
        "HOOKSCOPE_FORWARD_MAX_ATTEMPTS": _bounded(env, "HOOKSCOPE_FORWARD_MAX_ATTEMPTS", 8, 1, 20),
        "HOOKSCOPE_FORWARD_RETRY_SECONDS": _int(env, "HOOKSCOPE_FORWARD_RETRY_SECONDS", 5, 1),
        # Routes' flood limits (flask-limiter): in this process, or in Redis when several
        # processes share the work; while Redis does not answer, in this process (flask-limiter's
        # in-memory fallback), never refused for it. Captures: app/ingest/buckets.py.
        "RATELIMIT_STORAGE_URI": _redis_url(env) or "memory://",
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        # Never wait long on Redis for a count (the connection is made and used per check).
        "RATELIMIT_STORAGE_OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        # Off: the limiter would stamp its Retry-After on every response, a 503's included;
        # app/web/limits.py and app/ingest/limits.py set Retry-After on their own 429s.
        "RATELIMIT_HEADERS_ENABLED": False,
        # The browser holds its bins' read keys in the signed session cookie.
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_NAME": "hookscope",
        "PERMANENT_SESSION_LIFETIME": 180 * DAY,
        # Written only when it changes (app/web/security.py says why); it lasts 180 days from then.
        "SESSION_REFRESH_EACH_REQUEST": False,
        # CSRF tokens live as long as the session: a page left open for hours keeps working.
        "WTF_CSRF_TIME_LIMIT": None,
        # Flask-WTF's HTTPS check wants a Referer, which every page here turns off (no-referrer).
        "WTF_CSRF_SSL_STRICT": False,
        # API bodies are small JSON; the capture route reads its body itself with its own limit.
        "MAX_CONTENT_LENGTH": 1 * MIB,
        # GET /metrics (Prometheus), off unless asked for; the token, when set, is required.
        "HOOKSCOPE_METRICS": _bool(env, "HOOKSCOPE_METRICS", False),
        "HOOKSCOPE_METRICS_TOKEN": env.get("HOOKSCOPE_METRICS_TOKEN", "").strip(),
        "HOOKSCOPE_LOG_FORMAT": _choice(env, "HOOKSCOPE_LOG_FORMAT", LOG_FORMATS),
    }


def warnings(settings: Mapping[str, Any]) -> list[str]:
    """Say what in these settings works, but not as the operator most likely meant it."""
    found = []
    if (
        settings["HOOKSCOPE_PUBLIC_URL"].startswith("https://")
        and not settings["HOOKSCOPE_PROXY_COUNT"]
    ):
        found.append(
            f"HOOKSCOPE_PUBLIC_URL is {settings['HOOKSCOPE_PUBLIC_URL']} but"
            " HOOKSCOPE_PROXY_COUNT=0 trusts no proxy, so whatever terminates TLS in front of"
            " Hookscope (a proxy, a tunnel) is not believed when it says the request came over"
            " HTTPS: the session cookie, which holds read keys, is sent without Secure. Set"
            " HOOKSCOPE_PROXY_COUNT to the number of proxies in front (1 for one proxy or a"
            " tunnel)."
        )
    return found


@dataclass(frozen=True)
class ServerSettings:
    """What gunicorn needs before the app exists."""

    host: str
    port: int
    workers: int
    worker_connections: int
    metrics: bool
    # PROMETHEUS_MULTIPROC_DIR as the operator set it ("" to make one at each start).
    metrics_dir: str
    log_format: str


def server_settings(env: Mapping[str, str] | None = None) -> ServerSettings:
    """Read the listening address and process counts for gunicorn."""
    env = os.environ if env is None else env
    return ServerSettings(
        host=env.get("HOOKSCOPE_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=_int(env, "PORT", 8000, minimum=1),
        workers=_int(env, "HOOKSCOPE_WORKERS", 1, minimum=1),
        worker_connections=_int(env, "HOOKSCOPE_WORKER_CONNECTIONS", 1000, minimum=10),
        metrics=_bool(env, "HOOKSCOPE_METRICS", False),
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", "").strip(),
        log_format=_choice(env, "HOOKSCOPE_LOG_FORMAT", LOG_FORMATS),
    )


def client_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where the command-line client keeps its state: $XDG_STATE_HOME/hookscope, else
    ~/.local/state/hookscope (a relative XDG_STATE_HOME is ignored, as the XDG spec says)."""
    env = os.environ if env is None else env
    raw = env.get("XDG_STATE_HOME", "").strip()
    base = Path(raw) if raw and Path(raw).is_absolute() else Path.home() / ".local" / "state"
    return base / "hookscope"


def client_read_key(env: Mapping[str, str] | None = None) -> str | None:
    """Return the read key the command-line client takes from HOOKSCOPE_KEY, if set."""
    env = os.environ if env is None else env
    return env.get("HOOKSCOPE_KEY", "").strip() or None
