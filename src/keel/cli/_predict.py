"""``keel predict``: score a CSV or Parquet file with a model, in bounded memory.

Exit status: 0 when every row was scored; 2 when some rows were rejected (the others
are scored and written; ``--rejects`` records why, one record per failing cell); 1 on
an error, in which case no output or rejects file is written.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import errors_reported, print_json
from keel.serving import DEFAULT_CHUNK_ROWS

if TYPE_CHECKING:
    from keel.serving._batch import BatchSummary, ProgressCallback

__all__ = ["predict"]

EXIT_REJECTED = 2


def predict(
    model: Annotated[
        str,
        typer.Argument(help="Model URI: models:/NAME@ALIAS, models:/NAME/3 or runs:/<id>/model."),
    ],
    source: Annotated[
        Path, typer.Argument(help="Input file: .parquet or .csv (.tsv, .csv.gz also read).")
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Output file: .parquet, or .csv (row, columns, prediction)."
        ),
    ],
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", min=1, help="Rows per chunk (bounds memory).")
    ] = DEFAULT_CHUNK_ROWS,
    rejects: Annotated[
        Path | None,
        typer.Option(
            "--rejects", help="Write rejected rows here (.parquet or .csv): row, column, reason."
        ),
    ] = None,
    id_columns: Annotated[
        list[str] | None,
        typer.Option(
            "--id-column",
            help="Copy only this input column to the output (repeatable); default: all columns.",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace the output and rejects files if they exist.")
    ] = False,
    allow_pickle: Annotated[
        bool, typer.Option("--allow-pickle", help="Allow pickle-format model packages.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Score every row of a file with a model, streaming it in chunks.

    Exit status: 0 when every row was scored; 2 when some rows were rejected (the rest
    are scored; --rejects records why); 1 on errors (no file is written).
    """
    with errors_reported(as_json):
        from keel.context import get_context
        from keel.serving import ModelLoader
        from keel.serving._batch import check_paths, predict_file

        check_paths(source, output, rejects, force=force)  # fail before loading
        context = get_context()
        loader = ModelLoader(
            context.registry,
            context.models,
            max_rows=context.settings.serve_max_rows,
            allow_pickle=allow_pickle,
        )
        served = loader.load(model)
        with _progress_bar(enabled=not as_json) as progress:
            summary = predict_file(
                served,
                source,
                output,
                chunk_size=chunk_size,
                rejects=rejects,
                id_columns=id_columns or None,
                force=force,
                progress=progress,
            )
    if as_json:
        print_json(summary.to_dict())
    else:
        _print_summary(summary)
    if not summary.complete:
        raise typer.Exit(code=EXIT_REJECTED)


@contextmanager
def _progress_bar(*, enabled: bool) -> Iterator[ProgressCallback | None]:
    """A Rich bar on stderr (rows done / total when known); nothing unless a terminal."""
    from rich.console import Console

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("rows"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("scoring", total=None)

        def advance(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


def _print_summary(summary: BatchSummary) -> None:
    typer.echo(
        f"scored {summary.rows_scored:,} of {summary.rows_read:,} rows in "
        f"{summary.seconds:.2f} s ({summary.rows_per_second:,.0f} rows/s) -> {summary.output}"
    )
    if summary.unused_columns:
        shown = ", ".join(repr(c) for c in summary.unused_columns[:10])
        more = (
            f" and {len(summary.unused_columns) - 10} more"
            if len(summary.unused_columns) > 10
            else ""
        )
        typer.echo(f"not given to the model (not in its signature): {shown}{more}")
    if summary.complete:
        return
    where = (
        f" -> {summary.rejects}"
        if summary.rejects
        else "; pass --rejects rejects.parquet to record each failing cell"
    )
    typer.echo(
        f"rejected {summary.rows_rejected:,} rows ({summary.problems:,} problems){where}",
        err=True,
    )
    for column, reason, cells in summary.reasons[:10]:
        typer.echo(f"  column {column!r} {reason}: {cells:,} row{'s' * (cells != 1)}", err=True)
    if len(summary.reasons) > 10:
        typer.echo(f"  ... and {len(summary.reasons) - 10} more kinds of problem", err=True)
