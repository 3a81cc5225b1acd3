"""Configuration: defaults, then environment variables, then the test mapping.

This is the only module that reads ``os.environ``. Every setting has the ``HOOKSCOPE_`` prefix
except the conventional ``DATABASE_URL``, ``SECRET_KEY`` and ``PORT``; the app config key is the
variable's name, so an error message can name what to change.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.config_parsers import (
    MIB,
    allow_list,
    bounded,
    capture_host,
    capture_rate,
    choice,
    database_url,
    fixed_bins,
    flag,
    header_name,
    in_flight,
    integer,
    public_url,
    rate_limit,
    redis_url,
    secret_key,
    seed,
    token,
)
from app.config_parsers import ConfigError as ConfigError  # re-exported: what callers catch

DAY = 24 * 3600
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

LOG_FORMATS = ("text", "json")


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


def from_environment(instance_path: str, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Build the app configuration from defaults and environment variables."""
    env = os.environ if env is None else env
    return {
        "SECRET_KEY": secret_key(env, instance_path),
        "SQLALCHEMY_DATABASE_URI": database_url(env, instance_path),
        # A connection the database dropped (a restart, a failover) is replaced, not reused.
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "HOOKSCOPE_RETRY_AFTER_SECONDS": integer(env, "HOOKSCOPE_RETRY_AFTER_SECONDS", 5, 1),
        "REDIS_URL": redis_url(env),
        "HOOKSCOPE_MAX_BODY_BYTES": integer(env, "HOOKSCOPE_MAX_BODY_BYTES", 10 * MIB, minimum=1),
        "HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT": in_flight(env),
        # A capture's whole body must arrive within this time, or it is refused with 408.
        "HOOKSCOPE_BODY_TIMEOUT_SECONDS": integer(env, "HOOKSCOPE_BODY_TIMEOUT_SECONDS", 60, 1),
        # A request's line and headers must arrive within this time of the connection starting
        # to wait for them (keep-alive idle time included), or the connection is closed.
        "HOOKSCOPE_HEAD_TIMEOUT_SECONDS": integer(env, "HOOKSCOPE_HEAD_TIMEOUT_SECONDS", 15, 1),
        "HOOKSCOPE_PROXY_COUNT": integer(env, "HOOKSCOPE_PROXY_COUNT", 0),
        "HOOKSCOPE_PUBLIC_URL": public_url(env),
        # Captures only on this host, pages and the API only elsewhere (see the README).
        "HOOKSCOPE_CAPTURE_HOST": capture_host(env, public_url(env)),
        # Seeds the random draws of "fail N% of requests", for rehearsals that repeat exactly.
        "HOOKSCOPE_FAILURE_SEED": seed(env, "HOOKSCOPE_FAILURE_SEED"),
        "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS": integer(
            env, "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS", 30_000, minimum=100
        ),
        "HOOKSCOPE_REPLAY_LIMIT": integer(env, "HOOKSCOPE_REPLAY_LIMIT", 500, minimum=1),
        # The live stream's bounds (app/live/watches.py, app/live/backlog.py): missed captures
        # are replayed a page at a time, each page asked for by the client once it has the last;
        # one connection watches a few bins, says watch a few times a minute, and is dropped
        # when what waits to be sent to it passes either cap (it catches up by seq when back).
        "HOOKSCOPE_REPLAY_PAGE": integer(env, "HOOKSCOPE_REPLAY_PAGE", 100, minimum=1),
        "HOOKSCOPE_WATCHES_PER_SOCKET": integer(env, "HOOKSCOPE_WATCHES_PER_SOCKET", 10, minimum=1),
        "HOOKSCOPE_WATCH_RATE": rate_limit(env, "HOOKSCOPE_WATCH_RATE", "20/minute"),
        "HOOKSCOPE_LIVE_QUEUE_BYTES": integer(env, "HOOKSCOPE_LIVE_QUEUE_BYTES", MIB, minimum=4096),
        "HOOKSCOPE_LIVE_QUEUE_PACKETS": integer(env, "HOOKSCOPE_LIVE_QUEUE_PACKETS", 2000, 10),
        # Full-text search on PostgreSQL (app/store/search/postgres.py): the requests one call
        # always searches through the GIN index, and how long it may go on past them.
        "HOOKSCOPE_SEARCH_CHUNK_REQUESTS": integer(
            env, "HOOKSCOPE_SEARCH_CHUNK_REQUESTS", SEARCH_CHUNK_REQUESTS, minimum=1
        ),
        "HOOKSCOPE_SEARCH_BUDGET_MS": integer(env, "HOOKSCOPE_SEARCH_BUDGET_MS", SEARCH_BUDGET_MS),
        "HOOKSCOPE_DEFAULT_MAX_REQUESTS": integer(env, "HOOKSCOPE_DEFAULT_MAX_REQUESTS", 1000, 1),
        "HOOKSCOPE_MAX_REQUESTS_CEILING": integer(env, "HOOKSCOPE_MAX_REQUESTS_CEILING", 10_000, 1),
        "HOOKSCOPE_BIN_TTL_SECONDS": integer(env, "HOOKSCOPE_BIN_TTL_SECONDS", 7 * DAY, 60),
        "HOOKSCOPE_MAX_BIN_TTL_SECONDS": integer(
            env, "HOOKSCOPE_MAX_BIN_TTL_SECONDS", 90 * DAY, 60
        ),
        "HOOKSCOPE_ALLOW_NEVER_EXPIRE": flag(env, "HOOKSCOPE_ALLOW_NEVER_EXPIRE", False),
        "HOOKSCOPE_PRUNE_INTERVAL_SECONDS": integer(
            env, "HOOKSCOPE_PRUNE_INTERVAL_SECONDS", 300, 0
        ),
        "HOOKSCOPE_FIXED_BINS": fixed_bins(env),
        # Storage budgets: per bin (a user may lower a bin's own), for the whole instance (0: no
        # budget), the free space kept on the SQLite file's volume (0: not checked), and how often
        # each process reads the instance's figures again.
        "HOOKSCOPE_BIN_MAX_BYTES": integer(
            env, "HOOKSCOPE_BIN_MAX_BYTES", BIN_MAX_BYTES, minimum=MIN_BIN_MAX_BYTES
        ),
        "HOOKSCOPE_MAX_STORAGE_BYTES": integer(
            env, "HOOKSCOPE_MAX_STORAGE_BYTES", MAX_STORAGE_BYTES
        ),
        "HOOKSCOPE_MIN_FREE_DISK_BYTES": integer(
            env, "HOOKSCOPE_MIN_FREE_DISK_BYTES", MIN_FREE_DISK_BYTES
        ),
        "HOOKSCOPE_STORAGE_CHECK_SECONDS": integer(
            env, "HOOKSCOPE_STORAGE_CHECK_SECONDS", STORAGE_CHECK_SECONDS
        ),
        # Who may create bins and who may see them all: operator tokens, and the user an
        # authenticating proxy names (believed only from trusted proxies, HOOKSCOPE_PROXY_COUNT).
        "HOOKSCOPE_CREATE_TOKEN": token(env, "HOOKSCOPE_CREATE_TOKEN"),
        "HOOKSCOPE_ADMIN_TOKEN": token(env, "HOOKSCOPE_ADMIN_TOKEN"),
        "HOOKSCOPE_TRUSTED_USER_HEADER": header_name(env, "HOOKSCOPE_TRUSTED_USER_HEADER"),
        # Floods: captures per sender address and per bin, bin creation per address.
        # Floods: captures per sender address (an IPv6 /64), per bin and in all, bin creation
        # per address, 404s on bins per address.
        "RATELIMIT_ENABLED": flag(env, "HOOKSCOPE_RATE_LIMITS", True),
        # Token buckets (app/ingest/buckets.py): a burst taken whole, then the rate. Sized so
        # that two providers' bursts of 2,000 at once pass even through a tunnel, where every
        # sender is 127.0.0.1, while a flood is held to 20 a second (README, "Flood limits").
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS": capture_rate(
            env, "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS", "1200/minute burst 6000"
        ),
        "HOOKSCOPE_RATE_LIMIT_PER_BIN": capture_rate(
            env, "HOOKSCOPE_RATE_LIMIT_PER_BIN", "1200/minute burst 3000"
        ),
        # All captures together, whoever sends: the ceiling a crowd of senders (many addresses,
        # many IPv6 /64s) meets. Above what the per-address and per-bin limits let through for
        # two providers' bursts at once.
        "HOOKSCOPE_RATE_LIMIT_GLOBAL": capture_rate(
            env, "HOOKSCOPE_RATE_LIMIT_GLOBAL", "6000/minute burst 12000"
        ),
        # Pages and API calls on a bin answered 404 (no such bin, or a wrong key), per address.
        "HOOKSCOPE_RATE_LIMIT_NOT_FOUND": rate_limit(
            env, "HOOKSCOPE_RATE_LIMIT_NOT_FOUND", "120/minute"
        ),
        "HOOKSCOPE_RATE_LIMIT_CREATE": rate_limit(env, "HOOKSCOPE_RATE_LIMIT_CREATE", "60/hour"),
        "HOOKSCOPE_RATE_LIMIT_CSP_REPORTS": rate_limit(
            env, "HOOKSCOPE_RATE_LIMIT_CSP_REPORTS", "60/minute"
        ),
        "HOOKSCOPE_RATE_LIMIT_REPLAY": rate_limit(env, "HOOKSCOPE_RATE_LIMIT_REPLAY", "600/minute"),
        # Replay and auto-forward (app/outbound/): where they may send, and their bounds.
        "HOOKSCOPE_OUTBOUND_ALLOW": allow_list(env),
        "HOOKSCOPE_OUTBOUND_CONNECT_TIMEOUT_SECONDS": integer(
            env, "HOOKSCOPE_OUTBOUND_CONNECT_TIMEOUT_SECONDS", 5, 1
        ),
        "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS": integer(
            env, "HOOKSCOPE_OUTBOUND_TIMEOUT_SECONDS", 30, 1
        ),
        "HOOKSCOPE_OUTBOUND_MAX_RESPONSE_BYTES": integer(
            env, "HOOKSCOPE_OUTBOUND_MAX_RESPONSE_BYTES", MIB, 0
        ),
        "HOOKSCOPE_OUTBOUND_MAX_REDIRECTS": integer(env, "HOOKSCOPE_OUTBOUND_MAX_REDIRECTS", 0),
        # Outbound calls in flight per process, and per bin within a process.
        "HOOKSCOPE_OUTBOUND_CONCURRENCY": integer(env, "HOOKSCOPE_OUTBOUND_CONCURRENCY", 16, 1),
        "HOOKSCOPE_OUTBOUND_CONCURRENCY_PER_BIN": integer(
            env, "HOOKSCOPE_OUTBOUND_CONCURRENCY_PER_BIN", 4, 1
        ),
        # Auto-forward: tries per capture and target, and the first retry's delay (it doubles).
        "HOOKSCOPE_FORWARD_MAX_ATTEMPTS": bounded(env, "HOOKSCOPE_FORWARD_MAX_ATTEMPTS", 8, 1, 20),
        "HOOKSCOPE_FORWARD_RETRY_SECONDS": integer(env, "HOOKSCOPE_FORWARD_RETRY_SECONDS", 5, 1),
        # Routes' flood limits (flask-limiter): in this process, or in Redis when several
        # processes share the work; while Redis does not answer, in this process (flask-limiter's
        # in-memory fallback), never refused for it. Captures: app/ingest/buckets.py.
        "RATELIMIT_STORAGE_URI": redis_url(env) or "memory://",
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
        "HOOKSCOPE_METRICS": flag(env, "HOOKSCOPE_METRICS", False),
        "HOOKSCOPE_METRICS_TOKEN": env.get("HOOKSCOPE_METRICS_TOKEN", "").strip(),
        "HOOKSCOPE_LOG_FORMAT": choice(env, "HOOKSCOPE_LOG_FORMAT", LOG_FORMATS),
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
        port=integer(env, "PORT", 8000, minimum=1),
        workers=integer(env, "HOOKSCOPE_WORKERS", 1, minimum=1),
        worker_connections=integer(env, "HOOKSCOPE_WORKER_CONNECTIONS", 1000, minimum=10),
        metrics=flag(env, "HOOKSCOPE_METRICS", False),
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", "").strip(),
        log_format=choice(env, "HOOKSCOPE_LOG_FORMAT", LOG_FORMATS),
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
