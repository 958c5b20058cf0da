"""``keel experiments``: list experiments."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from keel.cli._output import errors_reported, print_json, print_table

app = typer.Typer(help="Experiments: named groups of runs.", no_args_is_help=True)


@app.command("list")
def list_experiments(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List experiments with their run counts."""
    from keel.context import get_context

    with errors_reported(as_json):
        found = get_context().tracking.list_experiments()
    if as_json:
        print_json(
            [
                {"id": e.id, "name": e.name, "created_at": e.created_at, "runs": e.run_count}
                for e in found
            ]
        )
        return
    print_table(
        "Experiments",
        ["name", "id", "runs", "created"],
        [
            (e.name, e.id, e.run_count, datetime.fromtimestamp(e.created_at, UTC).isoformat())
            for e in found
        ],
    )
