"""What a capture is answered: custom responses, rules, templates, handshakes, CORS, failure
rehearsal. Pure: plain data in and out, no Flask, no database.

The API checks changes with apply() and shows to_dict(); the database keeps stored_text().
"""

from .settings import FIELDS, apply, from_storable, stored_text
from .spec import DEFAULT_SETTINGS, Invalid, ResponseSettings

__all__ = [
    "DEFAULT_SETTINGS",
    "FIELDS",
    "Invalid",
    "ResponseSettings",
    "apply",
    "from_storable",
    "stored_text",
]
