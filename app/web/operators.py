"""Who may create bins and who may administer them: operator tokens, and a trusted proxy's user.

* HOOKSCOPE_CREATE_TOKEN: creating a bin (page or API) needs it, as ``Authorization: Bearer
  <token>`` or held in the browser's session once entered on the home page.
* HOOKSCOPE_TRUSTED_USER_HEADER: the user an authenticating proxy names in this header (for
  example oauth2-proxy's ``X-Forwarded-User``) may create bins and is recorded as their creator.
  Believed only when HOOKSCOPE_PROXY_COUNT says proxies are in front: otherwise anyone could send
  it. Set without a trusted proxy, it is ignored and creation stays closed (fail closed).
* HOOKSCOPE_ADMIN_TOKEN: the admin view, API and page.

A request that carries ``Authorization: Bearer`` is judged by that token alone, never by the
cookie: the API skips its CSRF check for such requests (app/web/api/__init__.py), which is
sound only if a Bearer request gains nothing from the cookie. The same header carries a bin's
read key on bin calls; here it is compared with the operator's token, so one never passes for
the other. Tokens are compared as SHA-256 digests in constant time; the session keeps only the
digest, so changing a token signs every browser out. A wrong token and a missing one get the
same answer.
"""

from __future__ import annotations

import hmac
import logging

from flask import current_app, request, session

from app.domain import keys
from app.logs import printable
from app.web.access import bearer_token
from app.web.errors import Refused

CREATE, ADMIN = "create", "admin"
_SETTING = {CREATE: "HOOKSCOPE_CREATE_TOKEN", ADMIN: "HOOKSCOPE_ADMIN_TOKEN"}
_SESSION = {CREATE: "create_grant", ADMIN: "admin_grant"}
# The longest creator name kept (the bins.created_by column).
USER_MAX = 200
log = logging.getLogger("hookscope.admin")


def trusted_user() -> str | None:
    """The user the authenticating proxy named, when proxies are trusted; else None."""
    config = current_app.config
    header = config["HOOKSCOPE_TRUSTED_USER_HEADER"]
    if not header or not config["HOOKSCOPE_PROXY_COUNT"]:
        return None
    return request.headers.get(header, "").strip()[:USER_MAX] or None


def holds(kind: str) -> bool:
    """Tell whether this request holds the operator's token of ``kind`` (Bearer, or session)."""
    token = current_app.config[_SETTING[kind]]
    if not token:
        return False
    expected = keys.digest(token)
    presented = bearer_token()
    if presented is not None:
        return keys.same(presented, expected)
    grant = session.get(_SESSION[kind])
    return hmac.compare_digest(grant if isinstance(grant, str) else "", expected)


def grant(kind: str, presented: str) -> bool:
    """Check a token typed into a page; when it matches, this browser's session holds it."""
    token = current_app.config[_SETTING[kind]]
    matches = keys.same(presented, keys.digest(token or "\0"))
    if not token or not matches:
        return False
    session[_SESSION[kind]] = keys.digest(token)
    session.permanent = True
    return True


def sign_out(kind: str) -> None:
    session.pop(_SESSION[kind], None)


def creation_restricted() -> bool:
    """Tell whether creating bins needs a token or a trusted user on this server."""
    config = current_app.config
    return bool(config["HOOKSCOPE_CREATE_TOKEN"] or config["HOOKSCOPE_TRUSTED_USER_HEADER"])


def may_create() -> bool:
    """Tell whether this request may create a bin now, without asking for anything."""
    return not creation_restricted() or trusted_user() is not None or holds(CREATE)


def creator() -> str | None:
    """Let this request create a bin, or refuse it (401, naming the settings); return the
    creator to record (None when not known)."""
    user = trusted_user()
    if user is not None or may_create():
        return user
    raise Refused(401, "create_token_required", create_refusal())


def create_refusal() -> str:
    """Say what creating a bin needs here, naming the settings."""
    config = current_app.config
    header = config["HOOKSCOPE_TRUSTED_USER_HEADER"]
    ways = []
    if config["HOOKSCOPE_CREATE_TOKEN"]:
        ways.append(
            "its create token (HOOKSCOPE_CREATE_TOKEN), as Authorization: Bearer <token>"
            " or entered on the home page"
        )
    if header and config["HOOKSCOPE_PROXY_COUNT"]:
        ways.append(f"signing in through the proxy that names you in {header}")
    elif header:
        ways.append(
            f"a user named in {header} (HOOKSCOPE_TRUSTED_USER_HEADER), which is not believed"
            " here: no proxy is trusted (HOOKSCOPE_PROXY_COUNT=0)"
        )
    return "creating bins on this server needs " + ", or ".join(ways)


def operator() -> str:
    """Let this request act as the operator, or refuse it (401); return who it is for the log:
    the proxy's user when there is one, else the admin token's holder."""
    if not current_app.config["HOOKSCOPE_ADMIN_TOKEN"]:
        raise Refused(
            401, "admin_disabled", "this server has no admin token (HOOKSCOPE_ADMIN_TOKEN)"
        )
    if not holds(ADMIN):
        raise Refused(401, "admin_token_required", ADMIN_REFUSAL)
    return trusted_user() or "admin-token"


ADMIN_REFUSAL = (
    "this needs the operator's admin token (HOOKSCOPE_ADMIN_TOKEN),"
    " as Authorization: Bearer <token> or entered on the /admin page"
)


def log_action(who: str, action: str, **details: object) -> None:
    """Log what an operator did, and who (escaped: the proxy's user is the sender's text)."""
    told = " ".join(f"{name}={printable(str(value))}" for name, value in details.items())
    log.info("admin %s operator=%s %s", action, printable(who), told)
