"""Configuration: defaults, then environment variables, then the test mapping.

This is the only module that reads ``os.environ``. Every setting has the ``HOOKSCOPE_`` prefix
except the conventional ``DATABASE_URL``, ``SECRET_KEY`` and ``PORT``; the app config key is the
variable's name, so an error message can name what to change.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


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


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name, "").strip() or default
    if value not in choices:
        raise ConfigError(f"{name}={value!r} must be one of {', '.join(choices)}")
    return value


def _public_url(env: Mapping[str, str]) -> str:
    raw = env.get("HOOKSCOPE_PUBLIC_URL", "").strip().rstrip("/")
    if raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"HOOKSCOPE_PUBLIC_URL={raw!r} must start with http:// or https://")
    return raw


def _redis_url(env: Mapping[str, str]) -> str:
    url = env.get("REDIS_URL", "").strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL={url!r} must start with redis://, rediss:// or unix://")
    return url


def _database_url(env: Mapping[str, str], instance_path: str) -> str:
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{Path(instance_path) / 'hookscope.db'}"
    # Heroku-style URLs name the dialect "postgres"; SQLAlchemy wants the driver spelled out.
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
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
        "REDIS_URL": _redis_url(env),
        "HOOKSCOPE_MAX_BODY_BYTES": _int(env, "HOOKSCOPE_MAX_BODY_BYTES", 10 * MIB, minimum=1),
        "HOOKSCOPE_PROXY_COUNT": _int(env, "HOOKSCOPE_PROXY_COUNT", 0),
        "HOOKSCOPE_PUBLIC_URL": _public_url(env),
        "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS": _int(
            env, "HOOKSCOPE_SQLITE_BUSY_TIMEOUT_MS", 30_000, minimum=100
        ),
        "HOOKSCOPE_REPLAY_LIMIT": _int(env, "HOOKSCOPE_REPLAY_LIMIT", 500, minimum=1),
        # API bodies are small JSON; the capture route reads its body itself with its own limit.
        "MAX_CONTENT_LENGTH": 1 * MIB,
    }


@dataclass(frozen=True)
class ServerSettings:
    """What gunicorn needs before the app exists."""

    host: str
    port: int
    workers: int
    worker_class: str
    worker_connections: int
    threads: int


def server_settings(env: Mapping[str, str] | None = None) -> ServerSettings:
    """Read the listening address and process counts for gunicorn."""
    env = os.environ if env is None else env
    return ServerSettings(
        host=env.get("HOOKSCOPE_HOST", "127.0.0.1").strip() or "127.0.0.1",
        port=_int(env, "PORT", 8000, minimum=1),
        workers=_int(env, "HOOKSCOPE_WORKERS", 1, minimum=1),
        worker_class=_choice(env, "HOOKSCOPE_WORKER_CLASS", "gevent", ("gevent", "gthread")),
        worker_connections=_int(env, "HOOKSCOPE_WORKER_CONNECTIONS", 1000, minimum=10),
        threads=_int(env, "HOOKSCOPE_THREADS", 100, minimum=1),
    )
