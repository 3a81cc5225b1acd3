"""Storage budgets: what a request counts, a bin's byte budget, and the instance's fair share.

Pure: plain numbers in, plain answers out. The per-bin budget is enforced by the writers'
retention (app/store/sqlite.py, app/store/postgres.py) and, for a single request too big for its
bin, by the capture gate; the instance budget and the free disk space by the gate, from each
process's figures (app/store/budget.py).

A request counts what it holds as stored: its body, its header list as stored (JSON, ASCII) and
its URL (UTF-8). A bin's ``stored_bytes`` is the sum over its requests, kept by the transactions
that add or remove them; the instance's is the sum over its bins.

Fair share: when the instance's stored bytes reach HOOKSCOPE_MAX_STORAGE_BYTES, the budget is
shared equally among the bins that hold anything. A bin holding at least its share is refused
(507) until the total falls below the budget; a bin below its share keeps capturing. Light bins
can so take the total past the budget by at most their shares; the free-space check on the disk
is the hard stop.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True, slots=True)
class Limits:
    """The operator's instance-wide limits; 0 turns either off."""

    max_storage_bytes: int
    min_free_disk_bytes: int


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a capture is not stored: a machine code and a message naming the setting."""

    code: str
    message: str


def stored_size(body_bytes: int, headers_json: str, url: str) -> int:
    """Count what a capture holds as stored: body, header list (as stored) and URL."""
    headers = len(headers_json) if headers_json.isascii() else len(headers_json.encode())
    link = len(url) if url.isascii() else len(url.encode("utf-8", "surrogatepass"))
    return body_bytes + headers + link


def effective_max_bytes(own: int | None, ceiling: int | None) -> int | None:
    """A bin's byte budget in effect: its own, capped by the operator's ceiling."""
    if own is None:
        return ceiling
    return own if ceiling is None else min(own, ceiling)


def fair_share(limits: Limits, active_bins: int) -> int | None:
    """The bytes each bin that holds anything may keep once the instance is at its budget."""
    if not limits.max_storage_bytes:
        return None
    return limits.max_storage_bytes // max(1, active_bins)


def over_budget(limits: Limits, stored_bytes: int) -> bool:
    """Tell whether the instance's stored bytes have reached its budget."""
    return bool(limits.max_storage_bytes) and stored_bytes >= limits.max_storage_bytes


def disk_low(limits: Limits, free_disk_bytes: int | None, adding: int = 0) -> bool:
    """Tell whether storing ``adding`` more bytes would leave less free space than the margin."""
    if not limits.min_free_disk_bytes or free_disk_bytes is None:
        return False
    return free_disk_bytes - adding < limits.min_free_disk_bytes


def disk_refusal(limits: Limits, free_disk_bytes: int) -> Refusal:
    return Refusal(
        "disk_full",
        f"the disk holding this server's database has {human(max(0, free_disk_bytes))} free,"
        f" less than the {human(limits.min_free_disk_bytes)} it keeps free"
        " (HOOKSCOPE_MIN_FREE_DISK_BYTES); nothing was stored",
    )


def budget_refusal(limits: Limits, stored_bytes: int, share: int, bin_bytes: int) -> Refusal:
    return Refusal(
        "storage_budget",
        f"this server's captures hold {human(stored_bytes)}, its budget is"
        f" {human(limits.max_storage_bytes)} (HOOKSCOPE_MAX_STORAGE_BYTES), and this bin holds"
        f" {human(bin_bytes)}, more than its fair share of {human(share)}; nothing was stored."
        " Clear or delete requests in this bin, or lower its max_bytes",
    )


def too_big_for_bin(size: int | None, max_bytes: int, what: str = "request") -> Refusal:
    """A single request (or body; ``size`` None: of unknown length) bigger than its bin's
    byte budget."""
    told = f"is {human(size)}" if size is not None else "is larger than this bin's budget"
    return Refusal(
        "too_big_for_bin",
        f"{what} {told}; this bin keeps at most {human(max_bytes)} in all (its max_bytes;"
        " the server's ceiling is HOOKSCOPE_BIN_MAX_BYTES); nothing was stored",
    )


def human(n: int) -> str:
    """Bytes for a message: exact below a KiB, else one decimal in KiB, MiB or GiB."""
    for unit, size in (("GiB", GIB), ("MiB", MIB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"
