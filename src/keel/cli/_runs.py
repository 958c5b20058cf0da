"""``keel runs``: list, search, show and delete runs."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import errors_reported, print_json, print_table

if TYPE_CHECKING:
    from keel.core._entities import Run

app = typer.Typer(help="Runs: what one execution of training code recorded.", no_args_is_help=True)

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
EXPERIMENT = Annotated[
    list[str] | None, typer.Option("--experiment", "-e", help="Experiment name (repeatable).")
]
MAX = Annotated[int, typer.Option("--max", "-n", help="At most this many runs.", min=1)]
ORDER = Annotated[
    list[str] | None,
    typer.Option("--order-by", "-o", help="e.g. 'metrics.auc DESC' (repeatable)."),
]


def _when(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _render(found: list[Run], as_json: bool, title: str) -> None:
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    metric_keys = sorted({k for r in found for k in r.metrics})[:6]
    print_table(
        f"{title} ({len(found)})",
        ["run id", "name", "status", "started", *metric_keys],
        [
            (
                r.id,
                r.name,
                r.status.value,
                _when(r.start_time),
                *(_number(r.metrics.get(k)) for k in metric_keys),
            )
            for r in found
        ],
    )


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


@app.command("list")
def list_runs(
    experiment: EXPERIMENT = None,
    max_results: MAX = 50,
    as_json: JSON = False,
) -> None:
    """List the most recent runs."""
    from keel.context import get_context

    with errors_reported(as_json):
        found = get_context().tracking.search_runs(experiment, None, None, max_results)
    _render(found, as_json, "Runs")


@app.command("search")
def search_runs(
    filter_text: Annotated[
        str, typer.Argument(metavar="FILTER", help="e.g. \"metrics.auc > 0.8 and params.C = '1'\"")
    ],
    experiment: EXPERIMENT = None,
    order_by: ORDER = None,
    max_results: MAX = 100,
    as_json: JSON = False,
) -> None:
    """Search runs with a filter over metrics, params, tags and attributes."""
    from keel.context import get_context

    with errors_reported(as_json):
        found = get_context().tracking.search_runs(experiment, filter_text, order_by, max_results)
    _render(found, as_json, "Matching runs")


@app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: JSON = False,
) -> None:
    """Show one run: params, latest metrics, tags, artifacts and provenance."""
    from keel.context import get_context

    with errors_reported(as_json):
        tracking = get_context().tracking
        run = tracking.get_run(run_id)
        artifacts = tracking.list_artifacts(run_id)
        environment = tracking.environment_of(run)
    if as_json:
        data = run.to_dict()
        data["artifacts"] = [
            {"name": a.name, "digest": a.digest, "size": a.size} for a in artifacts
        ]
        data["environment"] = {k: v for k, v in environment.items() if k != "packages"}
        print_json(data)
        return
    rows: list[tuple[str, str, str]] = [
        ("run", "id", run.id),
        ("run", "name", run.name),
        ("run", "status", run.status.value),
        ("run", "started", _when(run.start_time)),
        ("run", "ended", _when(run.end_time)),
        ("run", "parent", run.parent_id or ""),
    ]
    rows += [("param", k, v) for k, v in sorted(run.params.items())]
    rows += [("metric", k, _number(v)) for k, v in sorted(run.metrics.items())]
    rows += [("tag", k, v) for k, v in sorted(run.tags.items())]
    rows += [("artifact", a.name, f"{a.size} bytes  {a.digest[:16]}") for a in artifacts]
    git = run.source.get("git")
    if isinstance(git, dict):
        dirty = " (dirty)" if git.get("dirty") else ""
        rows.append(("source", "git", f"{git.get('commit')}{dirty}"))
    if environment:
        rows.append(("source", "python", str(environment.get("python"))))
    print_table(f"Run {run.name}", ["kind", "key", "value"], rows)


@app.command("delete")
def delete_run(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: JSON = False,
) -> None:
    """Delete a run (it disappears from listings and searches)."""
    from keel.context import get_context

    with errors_reported(as_json):
        get_context().tracking.delete_run(run_id)
    if as_json:
        print_json({"deleted": run_id})
    else:
        typer.echo(f"deleted run {run_id}")
