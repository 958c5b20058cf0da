"""Rendering for the CLI: Rich tables for people, JSON for scripts, one error format."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

import typer

from keel.errors import KeelError

JsonOption = typer.Option(False, "--json", help="Print JSON instead of a table.")


def print_json(data: Any) -> None:
    """Print ``data`` as JSON (NaN and infinities as null, other types as strings)."""
    typer.echo(json.dumps(_clean(data), indent=2, default=str))


def _clean(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: _clean(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_clean(v) for v in data]
    return data


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A Rich table; user-supplied cells are printed literally (no markup)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    Console().print(table)


def fail(error: KeelError, as_json: bool) -> NoReturn:
    """Report ``error`` on stderr (or as JSON on stdout) and exit with status 1."""
    if as_json:
        typer.echo(json.dumps({"error": error.to_dict()}, default=str))
    else:
        from rich.console import Console
        from rich.text import Text

        Console(stderr=True, soft_wrap=True).print(
            Text(f"error: {error.message}", style="bold red")
        )
    raise typer.Exit(code=1)


@contextmanager
def errors_reported(as_json: bool = False) -> Iterator[None]:
    """Turn a KeelError into a clear message and exit status 1, never a traceback."""
    try:
        yield
    except KeelError as error:
        fail(error, as_json)
