"""A bin's response settings through the API: check a change, and show what is set.

``PATCH /api/v1/bins/<id>`` (and ``POST /api/v1/bins``) take ``response``, ``rules``,
``handshakes`` and ``cors`` beside the bin's other settings; app/ingest/respond checks them
(``apply``) and says which field is wrong (``Invalid.field``). What is stored is the canonical
JSON text (``stored_text``), NULL for the defaults, so a bin with nothing set costs its captures
nothing.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
from typing import Any

from app.domain.models import AnswerRow, CapturedRequest
from app.domain.shapes import isoformat
from app.ingest import answering, respond
from app.ingest.respond import DEFAULT_SETTINGS, Invalid, ResponseSettings

log = logging.getLogger("hookscope.responses")
COLUMN = "response_settings"


def stored(text: str | None) -> ResponseSettings:
    """Read settings as stored; raise Invalid when they no longer pass the checks."""
    if not text:
        return DEFAULT_SETTINGS
    try:
        data = json.loads(text)
    except ValueError:
        raise Invalid("bad_settings", "the stored response settings are not JSON", "") from None
    return respond.from_storable(data)


def take_changes(
    changes: dict[str, Any], current_text: str | None
) -> tuple[dict[str, Any], dict[str, str | None]]:
    """Split a change into the bin's other settings and the checked response settings column.

    Raises Invalid (answered 400 with its ``field``) when the response settings are refused.
    """
    asked = {key: changes[key] for key in respond.FIELDS if key in changes}
    if not asked:
        return changes, {}
    rest = {key: value for key, value in changes.items() if key not in asked}
    try:
        current = stored(current_text)
    except Invalid as err:
        # Settings a newer version refuses: whatever is sent now replaces them.
        log.warning("bin response settings no longer valid, replaced: %s", err.message)
        current = DEFAULT_SETTINGS
    new = respond.apply(current, asked)
    return rest, {COLUMN: None if new.is_default else respond.stored_text(new)}


def shown(text: str | None) -> dict[str, Any]:
    """Return the bin's response settings as the API shows them (secrets only as set or not)."""
    try:
        return stored(text).to_dict()
    except Invalid as err:
        return {
            **DEFAULT_SETTINGS.to_dict(),
            "response_problem": (
                f"the saved response settings no longer pass this version's checks"
                f" ({err.message}); captures get the default answer until they are saved again"
            ),
        }


def answered(captured: CapturedRequest, row: AnswerRow | None) -> dict[str, Any]:
    """What a capture was answered, as the detail API shows it: headers and body as sent.

    A capture answered anything but the default ``200 ok`` has its record (``recorded``: true);
    ``sent_at`` is null while a delayed answer waits. A capture answered the default has none
    (storing it would cost every capture): it is shown as that answer is always sent, as soon
    as the capture was stored.
    """
    if row is not None:
        record = json.loads(row.record)
        sent_at = None if row.sent_at is None else isoformat(row.sent_at)
        recorded = True
    else:
        if captured.status == 401:  # stored before answers were recorded: challenge unknown
            answer = answering.rejected(None)
            answer = dataclasses.replace(answer, headers=answer.headers[:-1])
        else:
            answer = respond.DEFAULT
        record = dict(answer.to_record())
        sent_at, recorded = None, False
    if not record["hang_up"]:
        body_size = len(_body_bytes(record))
        framing = answering.framing(record["status"], body_size, captured.seq)
        record["headers"] = [*record["headers"], *([n, v] for n, v in framing)]
        if captured.method == "HEAD":  # the headers say what the body would have been
            record["body"], record["body_encoding"] = "", "utf-8"
    return {**record, "sent_at": sent_at, "recorded": recorded}


def _body_bytes(record: dict[str, Any]) -> bytes:
    if record["body_encoding"] == "base64":
        return base64.b64decode(record["body"])
    return str(record["body"]).encode("utf-8")
