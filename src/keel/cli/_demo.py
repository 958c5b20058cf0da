"""``keel demo``: the closed loop on a synthetic credit-approval world."""

from __future__ import annotations

from typing import Annotated

import typer


def demo(
    rows: Annotated[int, typer.Option(help="Rows of synthetic data.", min=1000)] = 50_000,
    seed: Annotated[int, typer.Option(help="Random seed of the synthetic world.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON summary.")] = False,
) -> None:
    """Generate a credit-approval world, train models over a grid, track every run."""
    from keel.cli._output import errors_reported, print_json
    from keel.demo import run_demo

    with errors_reported(as_json):
        summary = run_demo(rows=rows, seed=seed, quiet=as_json)
    if as_json:
        print_json(summary)
