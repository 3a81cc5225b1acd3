"""The bounds on what a bin may answer, in one place so messages and checks agree."""

from __future__ import annotations

# Saved settings.
MAX_BODY_BYTES = 64 * 1024  # a response body (text or base64-decoded bytes), template included
MAX_HEADERS = 50  # headers of one response
MAX_HEADER_NAME = 100
MAX_HEADER_VALUE = 4096  # as saved (a template may render up to MAX_RENDERED_HEADER)
MAX_RULES = 50
MAX_CONDITIONS = 20  # conditions of one rule
MAX_RULE_NAME = 100
MAX_PATTERN = 500  # a glob, a JSON path, a condition's header or query name
MAX_CONTENT_TYPE = 200
MAX_DELAY_MS = 30_000
MAX_FAIL_FIRST = 1000
MAX_SECRET = 500  # Meta verify token, Zoom secret token
MAX_CORS_ORIGINS = 20
MIN_STATUS, MAX_STATUS = 200, 599

# Rendering (per capture).
MAX_RENDERED_BODY = 1024 * 1024
MAX_RENDERED_HEADER = 8 * 1024
# Template size in syntax nodes: with no loops, macros or assignments allowed, this bounds the work
# one render can do.
MAX_TEMPLATE_NODES = 500

# Request bodies are parsed as JSON only when a rule or template asks for it, and only up to this
# size; a larger body is stored whole but has no JSON for rules and templates.
MAX_JSON_BODY = 1024 * 1024
# Handshake requests are small (Slack's and Zoom's about 150 bytes, Twitch's under 1 KiB); only
# bodies up to this size are looked at for one, so bigger captures pay nothing for handshakes.
MAX_HANDSHAKE_BODY = 4 * 1024
