"""Why a capture was refused: the reasons counted per bin, and what a bin's owner can do.

Every answer of 4xx or 5xx that a sender gets for a bin is counted under one of these reasons
(app/ingest/tally.py), kept per bin in ``bin_usage`` (app/store/usage.py), returned by the API
and shown on the bin's page. Requests refused before their bin is known (a malformed request
head, an unknown bin) are counted per process only: ``PROCESS_ONLY``.
"""

from __future__ import annotations

from dataclasses import dataclass

# What bin_usage counts besides refusals: captures stored (a 401-rejected one included).
CAPTURED = "captured"


@dataclass(frozen=True)
class Reason:
    status: int
    setting: str | None  # the setting that changes it, when one does
    summary: str  # "N requests <summary> in the last hour"
    advice: str  # what the bin's owner can do about it


REASONS: dict[str, Reason] = {
    "rate_limit_address": Reason(
        429,
        "HOOKSCOPE_RATE_LIMIT_PER_ADDRESS",
        "refused by the per-address limit",
        "raise HOOKSCOPE_RATE_LIMIT_PER_ADDRESS (behind a tunnel every sender has one address)",
    ),
    "rate_limit_bin": Reason(
        429,
        "HOOKSCOPE_RATE_LIMIT_PER_BIN",
        "refused by the per-bin limit",
        "raise HOOKSCOPE_RATE_LIMIT_PER_BIN",
    ),
    "rate_limit_global": Reason(
        429,
        "HOOKSCOPE_RATE_LIMIT_GLOBAL",
        "refused by the server-wide limit",
        "raise HOOKSCOPE_RATE_LIMIT_GLOBAL: all senders together sent more than it allows",
    ),
    "body_too_large": Reason(
        413,
        "HOOKSCOPE_MAX_BODY_BYTES",
        "refused because the body was over the size limit",
        "raise HOOKSCOPE_MAX_BODY_BYTES",
    ),
    "body_timeout": Reason(
        408,
        "HOOKSCOPE_BODY_TIMEOUT_SECONDS",
        "refused because the body did not arrive in time",
        "raise HOOKSCOPE_BODY_TIMEOUT_SECONDS, or look at the sender's connection",
    ),
    "body_incomplete": Reason(
        400,
        None,
        "refused because the sender stopped before the whole body arrived",
        "the sender closed its connection early; look at the sender's side",
    ),
    "bad_length": Reason(
        400,
        None,
        "refused for a malformed Content-Length",
        "the sender's HTTP client sends a length that is not a number",
    ),
    "unauthorized": Reason(
        401,
        None,
        "refused by this bin's ingest protection",
        "they are in the list, marked 401; check the sender's credentials",
    ),
    "bodies_in_flight": Reason(
        503,
        "HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT",
        "refused because the server held as many body bytes as it takes at once",
        "senders were told to retry (Retry-After); raise HOOKSCOPE_MAX_BODY_BYTES_IN_FLIGHT if"
        " the worker has the memory, or look for senders holding uploads open",
    ),
    "storage_unavailable": Reason(
        503,
        None,
        "refused because storage was unavailable",
        "senders were told to retry (Retry-After); see the server's log",
    ),
    "wrong_host": Reason(
        404,
        "HOOKSCOPE_CAPTURE_HOST",
        "refused because they were sent to the pages' host, not the capture host",
        "point the sender at the capture URL shown on this page (HOOKSCOPE_CAPTURE_HOST)",
    ),
    # Storage budgets (app/domain/budgets.py).
    "bin_budget": Reason(
        413,
        "HOOKSCOPE_BIN_MAX_BYTES",
        "refused because a request was bigger than this bin keeps in all",
        "raise this bin's max_bytes (up to HOOKSCOPE_BIN_MAX_BYTES)",
    ),
    "storage_budget": Reason(
        507,
        "HOOKSCOPE_MAX_STORAGE_BYTES",
        "refused: the server is at its storage budget and this bin holds more than its share",
        "clear or delete requests in this bin, or lower its max_bytes",
    ),
    "disk_full": Reason(
        507,
        "HOOKSCOPE_MIN_FREE_DISK_BYTES",
        "refused because the server's disk was nearly full",
        "the server's operator must free disk space",
    ),
}

# Refused before a bin is known: counted in each process, logged, not kept per bin.
PROCESS_ONLY = (
    "no_such_bin",
    "rate_limit_unknown_bin",  # a flood limit spent by requests for bins that do not exist
    "bad_request_head",
    "head_too_large",
    "unreadable_request",
)
