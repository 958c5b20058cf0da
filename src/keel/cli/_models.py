"""``keel models``: list, show, search, trace, promote, roll back and document versions."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import errors_reported, print_json, print_table

if TYPE_CHECKING:
    from keel.core._models import ModelVersion
    from keel.registry import RegistryService

app = typer.Typer(
    help="Models: registered versions, aliases, lineage and model cards.", no_args_is_help=True
)

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
REF = Annotated[str, typer.Argument(help="NAME/VERSION or NAME@ALIAS, e.g. credit/3.")]
NAME = Annotated[str, typer.Argument(help="The registered model's name.")]
VERSION = Annotated[str, typer.Argument(help="The version number, e.g. 3.")]
ALIAS = Annotated[str, typer.Option("--alias", "-a", help="The alias to move.")]
ACTOR = Annotated[str | None, typer.Option("--actor", help="Who decides (recorded).")]
REASON = Annotated[str | None, typer.Option("--reason", help="Why (recorded).")]


def _service() -> RegistryService:
    from keel.context import get_context

    return get_context().registry


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def version_dict(v: ModelVersion) -> dict[str, Any]:
    return {
        "name": v.name,
        "version": v.version,
        "uri": v.uri,
        "source": v.source,
        "run_id": v.run_id,
        "status": v.status,
        "gate": v.gate,
        "aliases": list(v.aliases),
        "tags": dict(v.tags),
        "description": v.description,
        "created_at": v.created_at,
    }


def _versions_table(title: str, versions: list[ModelVersion]) -> None:
    print_table(
        f"{title} ({len(versions)})",
        ["model", "version", "status", "gate", "aliases", "registered", "run", "tags"],
        [
            (
                v.name,
                v.version,
                v.status,
                v.gate or "",
                ", ".join(v.aliases),
                _when(v.created_at),
                v.run_id,
                ", ".join(f"{k}={x}" for k, x in v.tags.items()),
            )
            for v in versions
        ],
    )


def _done(v: ModelVersion, as_json: bool, message: str) -> None:
    if as_json:
        print_json(version_dict(v))
    else:
        typer.echo(message)


@app.command("list")
def list_models(as_json: JSON = False) -> None:
    """List registered models with their latest version and aliases."""
    with errors_reported(as_json):
        found = _service().list_models()
    if as_json:
        print_json([m.__dict__ | {"aliases": dict(m.aliases)} for m in found])
        return
    print_table(
        f"Registered models ({len(found)})",
        ["model", "versions", "latest", "aliases", "created"],
        [
            (
                m.name,
                m.version_count,
                m.latest_version,
                ", ".join(f"{a}=v{n}" for a, n in m.aliases.items()),
                _when(m.created_at),
            )
            for m in found
        ],
    )


@app.command("show")
def show(
    ref: Annotated[str, typer.Argument(help="NAME, NAME/VERSION or NAME@ALIAS.")],
    as_json: JSON = False,
) -> None:
    """Show a model's versions and alias history, or one version and its approvals."""
    with errors_reported(as_json):
        service = _service()
        if "/" in ref or "@" in ref:
            version = service.get(ref)
            approvals = service.approvals(version.name, version.version)
            if as_json:
                print_json(version_dict(version) | {"approvals": [a.__dict__ for a in approvals]})
                return
            rows: list[tuple[str, str]] = [(k, str(x)) for k, x in version_dict(version).items()]
            rows[-1] = ("created_at", _when(version.created_at))
            rows += [
                (f"approval {_when(a.at)}", f"{a.kind} of {a.alias} by {a.approver}: {a.reason}")
                for a in approvals
            ]
            print_table(f"Model {version.name} version {version.version}", ["field", "value"], rows)
            return
        versions = service.list_versions(ref)
        history = service.alias_history(ref)
    if as_json:
        print_json(
            {
                "name": ref,
                "versions": [version_dict(v) for v in versions],
                "alias_history": [h.__dict__ for h in history],
            }
        )
        return
    _versions_table(f"Model {ref}", versions)
    print_table(
        "Alias history",
        ["when", "alias", "action", "from", "to", "actor", "override", "reason"],
        [
            (
                _when(h.at),
                h.alias,
                h.action,
                h.from_version or "",
                h.to_version or "",
                h.actor or "",
                "yes" if h.override else "",
                h.reason or "",
            )
            for h in history
        ],
    )


@app.command("search")
def search(
    filter_text: Annotated[
        str,
        typer.Argument(
            metavar="FILTER", help="e.g. \"tags.domain = 'credit' and metrics.auc > 0.8\""
        ),
    ],
    max_results: Annotated[int, typer.Option("--max", "-n", min=1)] = 100,
    as_json: JSON = False,
) -> None:
    """Search versions over name, version, status, tags, and their runs' metrics and params."""
    with errors_reported(as_json):
        found = _service().search_models(filter_text, max_results)
    if as_json:
        print_json([version_dict(v) for v in found])
    else:
        _versions_table("Matching versions", found)


@app.command("lineage")
def lineage(ref: REF, as_json: JSON = False) -> None:
    """Show where a version came from: run, params, metrics, datasets, code, environment."""
    with errors_reported(as_json):
        service = _service()
        version = service.get(ref)
        data = service.lineage(version.name, version.version).to_dict()
    if as_json:
        print_json(data)
        return
    run, env = data["run"], data["environment"]
    git = data["code"].get("git") or {}
    rows: list[tuple[str, str, str]] = [
        ("model", "version", f"{data['model']}/{data['version']}"),
        ("model", "source", data["source"]),
        ("run", "id", run["id"]),
        ("run", "name", run["name"]),
        ("run", "experiment", run["experiment"]),
        ("run", "status", run["status"]),
    ]
    rows += [("param", k, v) for k, v in sorted(data["params"].items())]
    rows += [("metric", k, f"{v:.6g}") for k, v in sorted(data["metrics"].items())]
    rows += [("dataset", d["ref"], d["digest"][:16]) for d in data["datasets"]]
    if git:
        rows.append(("code", "git", f"{git.get('commit')}{' (dirty)' if git.get('dirty') else ''}"))
    rows += [("environment", k, str(v)) for k, v in env.items() if v is not None]
    print_table(f"Lineage of {data['model']}/{data['version']}", ["kind", "key", "value"], rows)


@app.command("promote")
def promote(
    name: NAME,
    version: VERSION,
    alias: ALIAS = "champion",
    override: Annotated[
        bool, typer.Option("--override", help="Promote despite the gate (needs --reason, --actor).")
    ] = False,
    reason: REASON = None,
    actor: ACTOR = None,
    as_json: JSON = False,
) -> None:
    """Point an alias (champion by default: needs a passed gate or an override) at a version."""
    with errors_reported(as_json):
        found = _service().set_alias(
            name, alias, version, actor=actor, reason=reason, override=override
        )
    _done(found, as_json, f"{name}@{alias} -> version {found.version}")


@app.command("rollback")
def rollback(
    name: NAME,
    alias: ALIAS = "champion",
    reason: REASON = None,
    actor: ACTOR = None,
    as_json: JSON = False,
) -> None:
    """Move an alias back to the version it held before."""
    with errors_reported(as_json):
        found = _service().rollback(name, alias, actor=actor, reason=reason)
    _done(found, as_json, f"{name}@{alias} rolled back to version {found.version}")


@app.command("archive")
def archive(name: NAME, version: VERSION, as_json: JSON = False) -> None:
    """Archive a version: still loadable by number, but it can hold no alias."""
    with errors_reported(as_json):
        found = _service().archive(name, version)
    _done(found, as_json, f"archived {name}/{found.version}")


@app.command("deprecate")
def deprecate(name: NAME, version: VERSION, as_json: JSON = False) -> None:
    """Mark a version deprecated."""
    with errors_reported(as_json):
        found = _service().deprecate(name, version)
    _done(found, as_json, f"deprecated {name}/{found.version}")


@app.command("card")
def card(
    ref: REF,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML page here.")
    ] = None,
    intended_use: Annotated[str, typer.Option("--intended-use")] = "",
    limitations: Annotated[str, typer.Option("--limitations")] = "",
    as_json: JSON = False,
) -> None:
    """Print a version's model card as Markdown (and write it as HTML with --html)."""
    with errors_reported(as_json):
        service = _service()
        version = service.get(ref)
        found = service.model_card(
            version.name, version.version, intended_use=intended_use, limitations=limitations
        )
    if html is not None:
        html.parent.mkdir(parents=True, exist_ok=True)
        html.write_text(found.to_html(), encoding="utf-8")
    if as_json:
        print_json(found.to_dict() | {"html": str(html) if html else None})
    else:
        typer.echo(found.to_markdown())
        if html is not None:
            typer.echo(f"wrote {html}")
