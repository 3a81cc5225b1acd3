"""Readers of single settings: each takes the environment as a mapping, and returns the value
checked, or raises ConfigError naming the variable.

app/config.py is the one entry point: it hands these the environment (only it reads
``os.environ``) and builds the app configuration from them. A few readers look beyond the
mapping where a setting names something outside it: the bins file, the instance folder's
generated secret key, an optional extra's driver.
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

import limits

from app.outbound import guard

MIB = 1024 * 1024
FIXED_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
FIXED_BIN_KEYS = ("id", "read_key", "name", "description")
# Operator tokens are compared as digests; short ones could be guessed.
MIN_TOKEN_CHARS = 16
HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+")
# Body bytes in flight per process by default (HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT, in_flight).
IN_FLIGHT = 256 * MIB


class ConfigError(RuntimeError):
    """A setting has a value Hookscope cannot use; the message names the variable."""


def integer(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
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


def bounded(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    value = integer(env, name, default, low)
    if value > high:
        raise ConfigError(f"{name}={value} must be at most {high}")
    return value


def flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={raw!r} must be true or false")


def fixed_bins(env: Mapping[str, str]) -> list[dict[str, str]]:
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


def rate_limit(env: Mapping[str, str], name: str, default: str) -> str:
    """Read a rate limit like ``600/minute`` (``off`` turns it off; returned as "")."""
    raw = env.get(name, "").strip() or default
    if raw.lower() == "off":
        return ""
    try:
        limits.parse_many(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} must be like 600/minute, or off") from None
    return raw


def token(env: Mapping[str, str], name: str) -> str:
    """Read an operator token (empty: not set); short ones are refused."""
    raw = env.get(name, "").strip()
    if raw and len(raw) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{name} must be a long random value of {MIN_TOKEN_CHARS}+ characters")
    return raw


def header_name(env: Mapping[str, str], name: str) -> str:
    raw = env.get(name, "").strip()
    if raw and not HEADER_NAME.fullmatch(raw):
        raise ConfigError(f"{name}={raw!r} must be a header name, like X-Forwarded-User")
    return raw


def in_flight(env: Mapping[str, str]) -> int:
    """Body bytes one process holds at once, from a body's first byte until its commit.

    The default takes 25 bodies of the default 10 MiB limit at once (or thousands of ordinary
    webhooks of a few KiB): a worker holds ~1.1x a body while it is read and stored
    (bench/README.md), so captures in flight stay under ~300 MiB of its memory. Never less than
    one body of the largest size accepted.
    """
    largest = integer(env, "HOOKSCOPE_MAX_BODY_BYTES", 10 * MIB, minimum=1)
    value = integer(env, "HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT", max(IN_FLIGHT, largest), minimum=1)
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


def capture_rate(env: Mapping[str, str], name: str, default: str) -> str:
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


def choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """Read one of ``choices`` (the first is the default), in any case."""
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ConfigError(f"{name}={raw!r} must be one of: {', '.join(choices)}")
    return raw


def public_url(env: Mapping[str, str]) -> str:
    raw = env.get("HOOKSCOPE_PUBLIC_URL", "").strip().rstrip("/")
    if raw and not raw.startswith(("http://", "https://")):
        raise ConfigError(f"HOOKSCOPE_PUBLIC_URL={raw!r} must start with http:// or https://")
    return raw


_HOST = re.compile(r"([a-z0-9-]+(\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(:\d{1,5})?")


def capture_host(env: Mapping[str, str], public_url: str) -> str:
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


def seed(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    return None if not raw else integer(env, name, 0)


def allow_list(env: Mapping[str, str]) -> guard.AllowList:
    raw = env.get(guard.ALLOW_SETTING, "")
    try:
        return guard.parse_allow_list(raw)
    except ValueError as err:
        raise ConfigError(f"{guard.ALLOW_SETTING}={raw!r}: {err}") from None


def need_extra(module: str, extra: str, variable: str) -> None:
    """Refuse a setting whose driver is an optional extra that is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ConfigError(
            f"{variable} needs the {extra} extra, which is not installed:"
            f" pip install 'hookscope[{extra}]' (make run installs it)"
        )


def redis_url(env: Mapping[str, str]) -> str:
    url = env.get("REDIS_URL", "").strip()
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(f"REDIS_URL={url!r} must start with redis://, rediss:// or unix://")
    if url:
        need_extra("redis", "redis", "REDIS_URL")
    return url


def database_url(env: Mapping[str, str], instance_path: str) -> str:
    url = env.get("DATABASE_URL", "").strip()
    if not url:
        return f"sqlite:///{Path(instance_path) / 'hookscope.db'}"
    # Heroku-style URLs name the dialect "postgres"; SQLAlchemy wants the driver spelled out.
    for prefix in ("postgres://", "postgresql://", "postgresql+psycopg://"):
        if url.startswith(prefix):
            need_extra("psycopg", "postgres", "DATABASE_URL")
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def secret_key(env: Mapping[str, str], instance_path: str) -> str:
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
