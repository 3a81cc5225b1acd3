"""``hookscope tail``: print a bin's captures as they arrive."""

from __future__ import annotations

import base64
from typing import Any

import click

from app.cli import remote
from app.cli.delivery import request_line
from app.cli.feed import Capture, Feed, Refused
from app.cli.follow import Follower
from app.cli.lines import shown, size

HELP = f"""Print a bin's captures as they arrive.

\b
  hookscope tail http://HOST/h/BIN --key KEY

One line per capture: seq, method, path and query, body size, content type, and the provider
event when a known provider sent it (github:push, stripe:invoice.paid, shopify:orders/create,
gitlab:..., ...). --json prints one JSON object per line; --body adds the body, as text when
it is UTF-8, else as base64. Starts with the next capture, or with capture SEQ (--since).

{remote.BIN_URL_HELP}"""


@click.command("tail", help=HELP)
@click.argument("bin_url")
@click.option("--key", help=remote.KEY_HELP)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--body", "with_body", is_flag=True, help="Include each capture's body.")
@click.option(
    "--since", type=click.IntRange(min=1), metavar="SEQ",
    help="Start with capture SEQ rather than the next one.",
)  # fmt: skip
def tail(bin_url: str, key: str | None, as_json: bool, with_body: bool, since: int | None) -> None:
    with remote.running(bin_url, key, as_json) as state:
        newest = remote.last_seq(state)  # also checks the key before anything is shown
        if newest is None:
            return
        feed = Feed(state.ref.server, state.ref.bin_id, state.key)
        after = since - 1 if since else newest
        follower = Follower(feed, state.signal, state.stop, state.printer.note, after, state.recent)

        def handle(capture: Capture) -> bool:
            fields = record(capture, with_body)
            state.printer.line(fields, text(fields))
            return True

        def missing(first: int, last: int) -> None:
            gone = f"#{first}" if first == last else f"#{first}-#{last}"
            state.printer.note("missing", f"{gone}: deleted before they could be read")

        def work() -> None:
            try:
                follower.run(handle, missing, lambda _seq: None)
            except Refused as err:
                state.fail(str(err))
            finally:
                feed.close()

        state.printer.note("start", f"tailing {state.ref.shown}")
        remote.wait_until_stopped(state, [remote.thread(state, "tail", work)])


def record(capture: Capture, with_body: bool) -> dict[str, Any]:
    """The --json line of one capture."""
    event = capture.event
    fields: dict[str, Any] = {
        "seq": capture.seq,
        "method": capture.method,
        "path": capture.path,
        "query_string": capture.query_string,
        "size": len(capture.body),
        "content_type": capture.content_type,
        "event": {"provider": event.provider, "name": event.name} if event else None,
        "received_at": capture.received_at,
        "rejected": capture.rejected,
    }
    if with_body:
        try:
            fields["body"] = capture.body.decode("utf-8")
        except UnicodeDecodeError:
            fields["body_base64"] = base64.b64encode(capture.body).decode("ascii")
    return fields


def text(fields: dict[str, Any]) -> str:
    """The human line of one capture (and its body, indented, with --body)."""
    parts = [
        f"#{fields['seq']}",
        request_line(fields["method"], fields["path"], fields["query_string"]),
        size(fields["size"]),
        shown(fields["content_type"] or "-"),
    ]
    if fields["event"]:
        parts.append(shown(f"{fields['event']['provider']}:{fields['event']['name']}"))
    if fields["rejected"]:
        parts.append("(rejected: no valid credentials)")
    line = "  ".join(parts)
    if fields.get("body"):
        # One line break at the end is the body's last line ending, not a line of its own.
        text = fields["body"].replace("\r\n", "\n").removesuffix("\n")
        body = shown(text, keep="\n\t")
        line += "\n" + "\n".join("    " + row for row in body.split("\n"))
    elif fields.get("body_base64"):
        line += f"\n    base64: {fields['body_base64']}"
    return line
