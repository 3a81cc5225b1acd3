"""What a capture is answered: custom responses, rules, templates, handshakes, CORS, failure
rehearsal. Pure: plain data in and out, no Flask, no database.

The gate builds a RequestView from its snapshot and asks the bin's Responder (responder_for, cached
per settings version) for an Answer; the API checks changes with apply() and shows to_dict().
"""

from .answer import DEFAULT, Answer, AnswerRecord
from .responder import DEFAULT_RESPONDER, Choice, Responder, responder_for
from .settings import FIELDS, apply, from_storable, stored_text
from .spec import DEFAULT_SETTINGS, Invalid, ResponseSettings
from .view import RequestView

__all__ = [
    "DEFAULT",
    "DEFAULT_RESPONDER",
    "DEFAULT_SETTINGS",
    "FIELDS",
    "Answer",
    "AnswerRecord",
    "Choice",
    "Invalid",
    "RequestView",
    "Responder",
    "ResponseSettings",
    "apply",
    "from_storable",
    "responder_for",
    "stored_text",
]
