"""Relying on a library's private parts, checked when the server starts.

Each module that uses a private part declares it beside the code that uses it, as ``RELIANCES``
(app/ingest/server.py, app/live/fanout.py, app/store/engine.py): the package, the part, and what
goes wrong without it. Those packages are pinned exactly in pyproject.toml (and everything in
constraints.txt), so a part only goes missing when someone installs other versions. Then the
server says which package and version it needs, and either refuses to start (``fallback`` False:
captures would silently lose trailers or header names, or bodies could not be refused safely) or
takes the public path (``fallback`` True: live events still arrive, only slower) and says so.

``check`` looks at reliances; ``enforce`` refuses to start on the first kind and logs the second
(the gunicorn master calls it, app/runtime/serving.py); ``usable`` is what code with a fallback
asks before it uses its part.
"""

from __future__ import annotations

import functools
import importlib
import logging
import platform
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata

log = logging.getLogger("hookscope.internals")
PYTHON = "Python"  # the standard library's private parts, as a package name


@dataclass(frozen=True)
class Reliance:
    package: str  # the distribution, as pip names it (or PYTHON)
    part: str  # "module:Attribute.attribute"
    loses: str  # what goes wrong without it
    fallback: bool  # True: the public path is taken; False: the server refuses to start
    # Beyond existing, does it behave as assumed? (None: existing is all that is assumed)
    behaves: Callable[[], bool] | None = None
    # Skip the check when this module cannot be imported (an extra that is not installed).
    needs: str | None = None


@dataclass(frozen=True)
class Finding:
    reliance: Reliance
    message: str


def resolve(part: str) -> object:
    """Import ``module:attr.attr`` and return the attribute; raise if any step is missing.

    A class that Hookscope put in the library's module in place of the library's own (gevent's
    ``pywsgi.Input`` is app/ingest/body_input.py's ``Body``) is looked at as the library defines it.
    """
    module_name, _, path = part.partition(":")
    found: object = importlib.import_module(module_name)
    for name in path.split("."):
        found = getattr(found, name)
        if isinstance(found, type) and found.__module__.startswith("app."):
            found = next(c for c in found.__mro__ if not c.__module__.startswith("app."))
    return found


def installed(package: str) -> str:
    if package == PYTHON:
        return platform.python_version()
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def wanted(package: str) -> str:
    """The version Hookscope is pinned to (pyproject.toml), as pip would be asked for it."""
    if package == PYTHON:
        return "Python " + (metadata.metadata("hookscope").get("Requires-Python") or "3.11+")
    try:
        requirements = metadata.requires("hookscope") or []
    except metadata.PackageNotFoundError:
        requirements = []
    for requirement in requirements:
        match = re.match(rf"{re.escape(package)}\s*(\[[^\]]*\])?\s*([^;]+)", requirement, re.I)
        if match:
            return f"{package}{match.group(2).strip()}"
    return package


def _failure(reliance: Reliance) -> str | None:
    """Say why the reliance does not hold, or None when it does."""
    if reliance.needs is not None and importlib.util.find_spec(reliance.needs) is None:
        return None  # its extra is not installed: nothing uses the part
    try:
        resolve(reliance.part)
    except ImportError as err:
        return f"cannot import {reliance.part.partition(':')[0]} ({err})"
    except AttributeError:
        return f"has no {reliance.part}"
    if reliance.behaves is not None:
        try:
            ok = reliance.behaves()
        except Exception as err:  # noqa: BLE001 - any failure means it does not behave
            return f"{reliance.part} does not behave as expected ({type(err).__name__}: {err})"
        if not ok:
            return f"{reliance.part} does not behave as expected"
    return None


def check(reliances: Iterable[Reliance]) -> list[Finding]:
    """Every reliance that does not hold, each with a message an operator can act on."""
    findings = []
    for reliance in reliances:
        why = _failure(reliance)
        if why is None:
            continue
        consequence = (
            "Hookscope takes the public path instead"
            if reliance.fallback
            else "Hookscope refuses to start"
        )
        message = (
            f"{reliance.package} {installed(reliance.package)} {why}: {reliance.loses}."
            f" Install {wanted(reliance.package)} (make run installs it from constraints.txt);"
            f" until then {consequence}."
        )
        findings.append(Finding(reliance, message))
    return findings


def enforce(reliances: Iterable[Reliance]) -> None:
    """Refuse to start when a reliance without a fallback fails; log the ones with one."""
    refusals = []
    for finding in check(reliances):
        if finding.reliance.fallback:
            log.warning("%s", finding.message)
        else:
            refusals.append(finding.message)
    if refusals:
        raise SystemExit("\n".join(refusals))


@functools.cache
def usable(*reliances: Reliance) -> bool:
    """Tell whether code relying on these parts may use them (checked once per process)."""
    return not check(reliances)
