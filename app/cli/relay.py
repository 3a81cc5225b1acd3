"""``hookscope forward``: relay a bin's captures to local targets, byte for byte, in order.

One lane per target: a thread with its own position, its own connection to the server and its
own order. A lane reads the captures after its position by seq (app/cli/follow.py), sends each
one routed to it (app/cli/delivery.py) and saves its position once the target has it. A slow
or failing target holds up only its own lane, keeping just the page it is working through: the
rest waits on the server, read by seq when the target answers again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import click

from app import config
from app.cli import delivery, position, remote
from app.cli.feed import Capture, Feed, Refused
from app.cli.follow import Follower
from app.cli.routes import BadRoute, Route, parse_route, targets_for
from app.outbound import client
from app.outbound.pool import Pool
from app.outbound.target import BadURL, parse_url

HELP = f"""Relay every capture of a bin to your code, exactly as it came.

\b
  hookscope forward http://HOST/h/BIN --key KEY --to http://localhost:3000/webhooks

Each capture is sent again with the same method, the path below the bin appended to the
target's path, the query as received, every header in order with duplicates, and the body byte
for byte, so signatures still verify. Only the hop-by-hop headers (Connection and what it
names, Keep-Alive, Proxy-Connection, TE, Trailer, Upgrade) are dropped and Host becomes the
target's.

One line per delivery: seq, method, path, the target's status and its latency (--json: one
JSON object per line). A target that does not answer, or answers 408, 425, 429, 502, 503 or
504 (with --require-2xx: anything but 2xx), is retried with backoff from 0.5 s to 30 s; the
captures behind it wait, in order.

The position (the last capture delivered) is kept per server, bin and target in
$XDG_STATE_HOME/hookscope (~/.local/state/hookscope): run the same command again and it goes
on after it, with nothing lost or sent twice, across server restarts, network drops and its
own. The first run for a target relays the bin's stored captures first (--only-new skips
them); --since SEQ starts over from a capture.

\b
Routing (first matching --route wins; the rest go to every --to):
  --route 'path:/stripe/*=http://localhost:4242/webhook'
  --route 'header:X-GitHub-Event=push=http://localhost:3000/push'
  --route 'header:X-Shopify-Topic=http://localhost:5000/shopify'
  --route 'event:stripe:invoice.*=http://localhost:4242/invoices'

Globs are fnmatch's (* also crosses /), case-sensitive; event: matches what
`hookscope tail` shows (github:push, stripe:invoice.paid, shopify:orders/create).

{remote.BIN_URL_HELP}"""


REJECTED = "not sent: the bin refused it (no valid credentials; --include-rejected sends it)"


@dataclass(frozen=True)
class Choices:
    """What the command line chose, the same for every lane."""

    routes: list[Route]
    defaults: list[str]
    limits: client.Limits
    require_2xx: bool
    include_rejected: bool


@dataclass
class Lane:
    """Everything one target's thread needs."""

    target: str
    spot: position.Position
    after: int
    label: str  # shown on each line when there are several targets
    speaks_for_all: bool  # the one lane that reports unrouted and missing captures
    dirty: bool = field(default=False)
    # The target's connection, kept open from one capture to the next when it allows.
    pool: Pool = field(default_factory=Pool)


@click.command("forward", help=HELP)
@click.argument("bin_url")
@click.option("--key", help=remote.KEY_HELP)
@click.option("--to", "to", multiple=True, metavar="URL", help="Send every capture here.")
@click.option(
    "--route", "route_specs", multiple=True, metavar="RULE=URL",
    help="Send captures matching RULE to URL (see above); repeat for more.",
)  # fmt: skip
@click.option(
    "--since", type=click.IntRange(min=1), metavar="SEQ",
    help="Start with capture SEQ, whatever the saved position.",
)  # fmt: skip
@click.option("--only-new", is_flag=True, help="Skip what the bin holds; relay new captures.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--require-2xx", is_flag=True, help="Retry until the target answers 2xx.")
@click.option(
    "--include-rejected", is_flag=True,
    help="Relay captures the bin refused (ingest protection: no valid credentials) too.",
)  # fmt: skip
@click.option(
    "--timeout", type=click.FloatRange(min=0.1), default=30.0, show_default=True,
    metavar="SECONDS", help="Longest wait for a target's answer (then it is retried).",
)  # fmt: skip
def forward(
    bin_url: str,
    key: str | None,
    to: tuple[str, ...],
    route_specs: tuple[str, ...],
    since: int | None,
    only_new: bool,
    as_json: bool,
    require_2xx: bool,
    include_rejected: bool,
    timeout: float,
) -> None:
    if since and only_new:
        raise click.UsageError("--since and --only-new cannot go together")
    routes = _routes(route_specs)
    defaults = list(dict.fromkeys(to))
    targets = list(dict.fromkeys([*defaults, *(r.target for r in routes)]))
    if not targets:
        raise click.UsageError("say where to send captures: --to URL (or --route RULE=URL)")
    for target in targets:
        try:
            parse_url(target)
        except BadURL as err:
            raise click.BadParameter(str(err), param_hint="--to/--route") from None
    choices = Choices(
        routes,
        defaults,
        client.Limits(timeout=timeout, max_response_bytes=64 * 1024),
        require_2xx,
        include_rejected,
    )
    with remote.running(bin_url, key, as_json) as state, contextlib.ExitStack() as held:
        last_seq = remote.last_seq(state)
        if last_seq is None:
            return
        lanes = []
        for index, target in enumerate(targets):
            spot = position.load(
                config.client_state_dir(), state.ref.server, state.ref.bin_id, target
            )
            try:
                held.enter_context(position.locked(spot))
            except position.PositionLocked as err:
                raise click.ClickException(str(err)) from None
            after, how = _start(spot, since, only_new, last_seq)
            label = target if len(targets) > 1 else ""
            lanes.append(Lane(target, spot, after, label, index == 0))
            state.printer.note(f"start {target}", f"relaying {state.ref.shown} to {target} {how}")
        workers = [
            remote.thread(
                state,
                f"lane-{n}",
                lambda lane=lane: _run_lane(lane, state, choices),
            )
            for n, lane in enumerate(lanes)
        ]
        remote.wait_until_stopped(state, workers)


def _routes(specs: tuple[str, ...]) -> list[Route]:
    try:
        return [parse_route(spec) for spec in specs]
    except BadRoute as err:
        raise click.BadParameter(str(err), param_hint="--route") from None


def _start(
    spot: position.Position, since: int | None, only_new: bool, last_seq: int
) -> tuple[int, str]:
    """Where a lane starts, and how to say so."""
    if since:
        return since - 1, f"from #{since} (--since)"
    if only_new:
        return last_seq, f"from the next capture after #{last_seq} (--only-new)"
    if spot.delivered is not None:
        return spot.delivered, f"resuming after #{spot.delivered}"
    return 0, "from the first capture the bin holds (first run for this target; --only-new skips)"


def _run_lane(lane: Lane, state: remote.Running, choices: Choices) -> None:
    feed = Feed(state.ref.server, state.ref.bin_id, state.key)
    follower = Follower(
        feed, state.signal, state.stop, state.printer.note, lane.after, state.recent
    )

    def handle(capture: Capture) -> bool:
        if capture.rejected and not choices.include_rejected:
            # Its sender had no valid credentials: relaying it would let anyone who knows the
            # capture URL reach the code behind the bin's ingest protection.
            lane.dirty = True
            if lane.speaks_for_all:
                _not_relayed(state, capture, "rejected", REJECTED)
            return True
        chosen = targets_for(capture, choices.routes, choices.defaults)
        if lane.target not in chosen:
            lane.dirty = True
            if not chosen and lane.speaks_for_all:
                _not_relayed(state, capture, "unrouted", "no route matched, not sent")
            return True
        if not _deliver(lane, state, capture, choices.limits, choices.require_2xx):
            return False
        lane.dirty = False
        return True

    def missing(first: int, last: int) -> None:
        if lane.speaks_for_all:
            gone = f"#{first}" if first == last else f"#{first}-#{last}"
            state.printer.line(
                {"outcome": "missing", "first": first, "last": last},
                f"{gone}: no longer on the server (deleted, or dropped by the bin's retention)",
            )
        lane.dirty = True

    def idle(seq: int) -> None:
        if lane.dirty or lane.spot.delivered != seq:
            lane.spot.save(seq)
            lane.dirty = False

    try:
        follower.run(handle, missing, idle)
    except Refused as err:
        state.fail(str(err))
    finally:
        feed.close()
        lane.pool.close()


def _deliver(
    lane: Lane, state: remote.Running, capture: Capture, limits: client.Limits, strict: bool
) -> bool:
    """Send until delivered (or never sendable), then save the position; False if stopped first.

    The position is saved before the line is printed: whoever reads the line (a script, a test)
    may stop the relay right then without the capture being sent again.
    """
    attempt = 0
    while True:
        attempt += 1
        result = delivery.send(capture, lane.target, limits, lane.pool)
        outcome = delivery.verdict(result.status, result.error, strict)
        retry_in = delivery.backoff(attempt, result.headers) if outcome == delivery.RETRY else None
        waiting = max(0, state.signal.latest - capture.seq)
        fields = delivery.record(capture, lane.target, result, outcome, attempt, retry_in, waiting)
        if retry_in is None:
            lane.spot.save(capture.seq)
        state.printer.line(fields, delivery.text(fields, lane.label))
        if retry_in is None:
            return True
        if state.stop.wait(retry_in):
            return False


def _not_relayed(state: remote.Running, capture: Capture, outcome: str, why: str) -> None:
    line = delivery.request_line(capture.method, capture.path, capture.query_string)
    state.printer.line(
        {
            "seq": capture.seq,
            "method": capture.method,
            "path": capture.path,
            "query_string": capture.query_string,
            "outcome": outcome,
        },
        f"#{capture.seq} {line} -> {why}",
    )
