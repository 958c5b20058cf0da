"""``keel models validate``: check an evaluation report against a gate, for CI.

Exit status 0 when the gate passes, 1 when it fails or the input is wrong. Every reason
is printed, passed or not (a table; JSON with ``--json``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from keel.cli._output import errors_reported, print_json, print_table


def register(app: typer.Typer) -> None:
    """Add ``validate`` to the ``keel models`` app."""
    app.command("validate")(validate_command)


def validate_command(
    gate: Annotated[Path, typer.Option("--gate", "-g", help="Gate YAML (metric, rules, ...).")],
    report: Annotated[
        Path, typer.Option("--report", "-r", help="Evaluation report JSON of the candidate.")
    ],
    champion_report: Annotated[
        Path | None,
        typer.Option(
            "--champion-report",
            help="The champion's evaluation report on the same holdout (same data digest).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Check an evaluation report against a gate; exit status 1 when a rule fails."""
    from keel.evaluation._gate import Gate
    from keel.evaluation._report import EvaluationReport

    with errors_reported(as_json):
        checked = Gate.from_yaml(gate)
        candidate = EvaluationReport.load(report)
        champion = EvaluationReport.load(champion_report) if champion_report else None
        result = checked.check(candidate, champion)
    if as_json:
        print_json(result.to_dict())
    else:
        verdict = "passed" if result.passed else "FAILED"
        print_table(
            f"Gate {gate.name} on {report.name}: {verdict}",
            ["status", "check", "observed", "threshold", "message"],
            [
                (
                    r.status,
                    r.rule,
                    "" if r.observed is None else f"{r.observed:.4g}",
                    "" if r.threshold is None else f"{r.threshold:.4g}",
                    r.message,
                )
                for r in result.reasons
            ],
        )
    if not result.passed:
        raise typer.Exit(code=1)
