"""``keel config``: every environment variable Keel reads, with its current value."""

from __future__ import annotations

from typing import Annotated

import typer

from keel.cli._output import errors_reported, print_json, print_table


def show_config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show Keel's settings: name, current value, default and what each does."""
    from keel.config import SETTINGS, load_settings

    with errors_reported(as_json):
        settings = load_settings()
    rows = [(s.name, settings.raw[s.name], s.default, s.doc) for s in SETTINGS]
    if as_json:
        print_json(
            [{"name": n, "value": v, "default": d, "doc": doc} for n, v, d, doc in rows]
            + [
                {"name": "(resolved store)", "value": settings.store_uri},
                {"name": "(resolved artifacts)", "value": settings.artifact_uri},
            ]
        )
        return
    print_table("Keel settings", ["variable", "value", "default", "what it does"], rows)
    typer.echo(f"metadata store: {settings.store_uri}")
    typer.echo(f"artifact store: {settings.artifact_uri}")
