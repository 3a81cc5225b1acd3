"""``hookscope admin usage``: every bin's storage in the terminal, the biggest first.

The same rows as the admin API and page (app/store/admin.py), the most bytes stored first or,
with ``--sort traffic``, the most captures and refusals in the last day. Columns are a table.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext

from app.domain.budgets import human
from app.logs import printable
from app.store import admin
from app.store.budget import figures_of


def _when(value: str | None, empty: str) -> str:
    return (value or empty)[:19].replace("T", " ")


# (heading, width, right-aligned, cell): what each column prints from a row's dict.
COLUMNS: list[tuple[str, int, bool, Callable[[dict[str, Any]], str]]] = [
    ("id", 26, False, lambda b: b["id"]),
    ("requests", 8, True, lambda b: f"{b['request_count']:,}"),
    ("stored", 10, True, lambda b: human(b["stored_bytes"])),
    ("budget", 10, True, lambda b: human(b["max_bytes"]) if b["max_bytes"] else "-"),
    ("captures/1h", 11, True, lambda b: f"{b['traffic']['captures_hour']:,}"),
    ("captures/1d", 11, True, lambda b: f"{b['traffic']['captures_day']:,}"),
    ("refusals/1h", 11, True, lambda b: f"{b['traffic']['refusals_hour']:,}"),
    ("refusals/1d", 11, True, lambda b: f"{b['traffic']['refusals_day']:,}"),
    ("last capture (UTC)", 19, False, lambda b: _when(b["last_capture_at"], "-")),
    ("expires (UTC)", 19, False, lambda b: _when(b["expires_at"], "never")),
    ("creator", 16, False, lambda b: printable(b["created_by"] or "-", 16)),
    ("name", 0, False, lambda b: printable(b["name"], 60)),
]


def _line(cells: list[str]) -> str:
    parts = [
        cell.rjust(width) if right else cell.ljust(width)
        for cell, (_, width, right, _) in zip(cells, COLUMNS, strict=True)
    ]
    return "  ".join(parts).rstrip()


@click.group("admin")
def admin_group() -> None:
    """Operator commands: what the bins of this server hold."""


@admin_group.command("usage")
@click.option("--limit", default=20, show_default=True, help="Bins to list, biggest first.")
@click.option("--after", default=None, help="Go on from the 'next' a previous listing printed.")
@click.option(
    "--sort",
    type=click.Choice(list(admin.SORTS)),
    default="bytes",
    show_default=True,
    help="Biggest first by bytes stored, or by captures and refusals in the last day.",
)
@with_appcontext
def usage(limit: int, after: str | None, sort: str) -> None:
    """Print the instance's storage and its bins, the biggest first (bytes or traffic)."""
    storage = totals = figures_of(current_app, fresh=True)
    budget, free = storage["max_storage_bytes"], storage["free_disk_bytes"]
    click.echo(
        f"{totals['bins']:,} bins, {totals['requests']:,} requests, "
        f"{human(totals['stored_bytes'])} stored"
        + (f" of {human(budget)} (HOOKSCOPE_MAX_STORAGE_BYTES)" if budget else "")
        + (f"; {human(free)} free on disk" if free is not None else "")
    )
    if storage["disk_low"]:
        click.echo("the disk is below HOOKSCOPE_MIN_FREE_DISK_BYTES: every capture gets 507")
    elif storage["over_budget"]:
        click.echo(
            f"at the storage budget: bins holding {human(storage['fair_share_bytes'])} or more"
            " get 507"
        )
    try:
        rows, cursor = admin.page(max(1, min(limit, admin.PAGE_MAX)), after, sort)
    except admin.BadCursor:
        raise click.BadParameter("give the 'next' value a previous listing printed") from None
    if not rows:
        click.echo("no bins")
        return
    ceiling = current_app.config["HOOKSCOPE_BIN_MAX_BYTES"]
    click.echo(_line([heading for heading, *_ in COLUMNS]))
    for row in rows:
        shown = row.to_dict(ceiling)
        click.echo(_line([cell(shown) for *_, cell in COLUMNS]))
    if cursor:
        sorted_by = f" --sort {sort}" if sort != "bytes" else ""
        click.echo(f"next: hookscope admin usage --limit {limit}{sorted_by} --after {cursor}")
