"""Decide what a capture is answered: the one entry point for the capture gate.

Compile once per settings version (``responder_for(stored_text)`` caches by the stored text) and
reuse the Responder for every capture. For each request::

    choice = responder.choose(view)         # which answer, cheap; no rendering
    attempt = 0
    if choice.counter_key is not None:      # a "first N" failure rehearsal: count this request
        attempt = shared_counter.incr(bin_id, choice.counter_key) - 1
    answer = responder.answer(view, choice, attempt=attempt)

``responder.respond(view)`` does both when no count is kept (attempt 0).

Precedence, first that applies:

1. the bin's rules, in order: the user wrote them, so a rule for a handshake's path or for OPTIONS
   means to answer it differently (rehearsing a failed verification, say);
2. a CORS preflight, when CORS is on, so that turning CORS on is enough for a browser;
3. a verification handshake, when handshakes are on (the default), before the bin's own default
   response, because that response (``201 created``, say) would fail a provider's check;
4. the bin's own default response, or today's ``200 ok``.

With CORS on, every answer also carries the Access-Control-* headers its Origin gets.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from . import cors, failure, handshakes
from .answer import DEFAULT, Answer, Headers, custom, hang_up
from .headers import has_control
from .limits import MAX_RENDERED_BODY, MAX_RENDERED_HEADER
from .match import Predicate, all_of
from .settings import from_storable, stored_text
from .spec import DEFAULT_SETTINGS, ResponseSettings, ResponseSpec
from .templates import Template, TemplateFailed, compile_template, is_template
from .view import RequestView


@dataclass(frozen=True, slots=True)
class Choice:
    """Which answer a request gets, before anything is rendered.

    ``source`` is "rule", "preflight", "handshake", "response" or "default". ``counter_key`` is
    set when the chosen response rehearses "fail the first N": count the request under it.
    """

    source: str
    rule: str | None = None
    rule_index: int | None = None
    handshake: str | None = None
    counter_key: str | None = None
    prepared: Answer | None = field(default=None, repr=False)
    compiled: _Compiled | None = field(default=None, repr=False)


DEFAULT_CHOICE = Choice("default", prepared=DEFAULT)
PREFLIGHT_CHOICE = Choice("preflight", prepared=cors.PREFLIGHT)


class _Compiled:
    """A ResponseSpec made ready: templates compiled, a static answer built once."""

    def __init__(self, spec: ResponseSpec, scope: str, **why: Any) -> None:
        self.spec, self.scope, self.why = spec, scope, why
        text = spec.body.decode("utf-8") if spec.body_is_text else ""
        self.body: Template | None = compile_template(text) if is_template(text) else None
        self.headers = tuple(
            (name, compile_template(value) if is_template(value) else value)
            for name, value in spec.headers
        )
        templates = [self.body, *(v for _, v in self.headers if isinstance(v, Template))]
        self.names = frozenset().union(*(t.names for t in templates if t is not None))
        dynamic = self.names or (spec.failure is not None and spec.failure.per_header)
        self.static = None if dynamic else self._build(spec.body, spec.headers, None)
        self.source = str(why.get("source"))
        # Without a count to keep, the choice is the same for every request: made once.
        self.fixed = None if spec.failure is not None else self._choice(None)

    def _build(self, body: bytes, headers: Headers, delivery: str | None) -> Answer:
        spec = self.spec
        return custom(
            spec.status,
            body,
            spec.content_type,
            headers,
            delay_ms=spec.delay_ms,
            delivery_id=delivery,
            **self.why,
        )

    def choice(self, view: RequestView) -> Choice:
        if self.fixed is not None:
            return self.fixed
        rehearsal = self.spec.failure
        assert rehearsal is not None  # noqa: S101
        return self._choice(failure.counter_key(rehearsal, self.scope, view))

    def _choice(self, key: str | None) -> Choice:
        return Choice(
            self.source,
            rule=self.why.get("rule"),
            rule_index=self.why.get("rule_index"),
            counter_key=key,
            compiled=self,
        )

    def answer(self, view: RequestView, attempt: int, roll: Callable[[], float]) -> Answer:
        rehearsal = self.spec.failure
        delivery = None
        if rehearsal is not None:
            if rehearsal.per_header is not None:
                delivery = view.header(rehearsal.per_header)
            drawn = roll() if rehearsal.percent is not None else 0.0
            if failure.should_fail(rehearsal, attempt, drawn):
                return self._fail(attempt, delivery)
        if self.static is not None:
            return self.static
        try:
            body = self.spec.body if self.body is None else self._render_body(view)
            headers = tuple(
                (name, self._render_header(name, value, view)) for name, value in self.headers
            )
        except TemplateFailed as err:
            reason = f"the response template failed: {err}"
            text = (reason + "\n").encode()
            return custom(
                500, text, "text/plain; charset=utf-8", template_error=str(err), **self.why
            )
        return self._build(body, headers, delivery)

    def _render_body(self, view: RequestView) -> bytes:
        assert self.body is not None  # noqa: S101
        body = self.body.render(view, MAX_RENDERED_BODY).encode("utf-8", "replace")
        if len(body) > MAX_RENDERED_BODY:
            raise TemplateFailed(f"the body rendered more than {MAX_RENDERED_BODY} bytes")
        return body

    def _render_header(self, name: str, value: str | Template, view: RequestView) -> str:
        if isinstance(value, str):
            return value
        try:
            text = value.render(view, MAX_RENDERED_HEADER)
        except TemplateFailed as err:
            raise TemplateFailed(f"header {name}: {err}") from None
        if has_control(text):
            raise TemplateFailed(f"header {name} rendered a line break or control character")
        return text

    def _fail(self, attempt: int, delivery: str | None) -> Answer:
        rehearsal = self.spec.failure
        assert rehearsal is not None  # noqa: S101
        why = {**self.why, "failure": failure.reason(rehearsal, attempt), "delivery_id": delivery}
        if rehearsal.timeout:
            return hang_up(rehearsal.delay_ms, **why)
        body = (why["failure"] + "\n").encode()
        plain = "text/plain; charset=utf-8"
        return custom(rehearsal.status, body, plain, delay_ms=rehearsal.delay_ms, **why)


@dataclass(frozen=True)
class _Rule:
    matches: Predicate
    compiled: _Compiled


def fingerprint(settings: ResponseSettings) -> str:
    """Name a settings version (failure counters are kept per version)."""
    return hashlib.sha256(stored_text(settings).encode()).hexdigest()[:16]


class Responder:
    """A bin's compiled response settings; reuse one for every capture of that version."""

    def __init__(
        self,
        settings: ResponseSettings,
        *,
        scope: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        scope = fingerprint(settings) if scope is None else scope
        # Rehearsal, not security: a plain PRNG, seedable so tests can predict it.
        self._rng = rng or random.Random()  # noqa: S311
        self._rules = tuple(
            _Rule(
                all_of(tuple(condition.compile() for condition in rule.when)),
                _Compiled(
                    rule.response,
                    f"{scope}:rule{index}",
                    source="rule",
                    rule=rule.name,
                    rule_index=index,
                ),
            )
            for index, rule in enumerate(settings.rules)
        )
        self._response = (
            None
            if settings.response is None
            else _Compiled(settings.response, f"{scope}:response", source="response")
        )
        compiled = [r.compiled for r in self._rules] + [self._response]
        names = frozenset().union(*(c.names for c in compiled if c is not None))
        #: Whether a template uses ``seq``: if not, the answer can be made before storing.
        self.needs_seq = "seq" in names

    def choose(self, view: RequestView) -> Choice:
        """Pick the answer for a request (see the module's precedence); render nothing."""
        for rule in self._rules:
            if rule.matches(view):
                return rule.compiled.choice(view)
        settings = self.settings
        if settings.cors and cors.is_preflight(view):
            return PREFLIGHT_CHOICE
        if settings.handshakes:
            found = handshakes.detect(view, settings)
            if found is not None:
                return Choice("handshake", handshake=found.handshake, prepared=found)
        if self._response is not None:
            return self._response.choice(view)
        return DEFAULT_CHOICE

    def answer(
        self,
        view: RequestView,
        choice: Choice | None = None,
        *,
        attempt: int = 0,
        roll: float | None = None,
    ) -> Answer:
        """Make the answer: ``attempt`` is how many requests came before under counter_key;
        ``roll`` in [0, 1) decides a percentage failure (drawn from the Responder's RNG if None).
        """
        choice = self.choose(view) if choice is None else choice
        if choice.prepared is not None:
            answer = choice.prepared
        else:
            assert choice.compiled is not None  # noqa: S101
            answer = choice.compiled.answer(view, attempt, lambda: self._draw(roll))
        if self.settings.cors:
            answer = answer.with_headers(cors.cors_headers(self.settings.cors_origins, view))
        return answer

    def respond(self, view: RequestView) -> Answer:
        """Choose and make the answer, counting nothing (every request is attempt 0)."""
        return self.answer(view, self.choose(view))

    def _draw(self, roll: float | None) -> float:
        return self._rng.random() if roll is None else roll


DEFAULT_RESPONDER = Responder(DEFAULT_SETTINGS)


@lru_cache(maxsize=256)
def responder_for(stored: str | None, seed: int | None = None) -> Responder:
    """Return the Responder for settings as stored (JSON text), compiled once per version.

    ``seed`` seeds the draws of percentage failures (HOOKSCOPE_FAILURE_SEED), so that a
    rehearsal repeats exactly; each compiled version draws from its own seeded generator.
    Raises spec.Invalid when the stored settings no longer pass the checks.
    """
    if not stored:
        return DEFAULT_RESPONDER
    scope = hashlib.sha256(stored.encode()).hexdigest()[:16]
    rng = None if seed is None else random.Random(seed)  # noqa: S311 - rehearsal, not security
    return Responder(from_storable(json.loads(stored)), scope=scope, rng=rng)
