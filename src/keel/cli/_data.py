"""``keel data``: version files and directories, inspect, compare, tag, restore, trace."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from keel.cli._output import errors_reported, print_json, print_table

if TYPE_CHECKING:
    from keel.core._data import DatasetVersion
    from keel.data._service import DataService

app = typer.Typer(help="Data: versioned datasets and their lineage.", no_args_is_help=True)

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
REF = Annotated[str, typer.Argument(help="NAME, NAME@v3 or NAME@TAG.")]


def _service() -> DataService:
    from keel.context import get_context

    return get_context().data


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return str(size)


def version_dict(v: DatasetVersion) -> dict[str, Any]:
    return {
        "ref": v.ref,
        "id": v.id,
        "name": v.name,
        "version": v.version,
        "digest": v.digest,
        "kind": v.kind,
        "files": v.file_count,
        "size": v.size,
        "created_at": v.created_at,
        "message": v.message,
        "tags": list(v.tags),
        "parents": list(v.parents),
        "metadata": dict(v.metadata),
        "has_schema": v.schema is not None,
    }


def _versions_table(title: str, versions: list[DatasetVersion]) -> None:
    print_table(
        title,
        ["version", "created", "files", "size", "tags", "digest", "message"],
        [
            (
                v.ref,
                _when(v.created_at),
                v.file_count,
                _size(v.size),
                ", ".join(v.tags),
                v.digest[:12],
                v.message,
            )
            for v in versions
        ],
    )


@app.command("add")
def add(
    path: Annotated[Path, typer.Argument(help="A file or a directory.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Dataset name.")],
    message: Annotated[str | None, typer.Option("--message", "-m", help="What changed.")] = None,
    as_json: JSON = False,
) -> None:
    """Version a file or directory; unchanged content keeps the latest version."""
    # This process ends after one add: what start-up built lives until exit, so no
    # collection of the cyclic garbage collector need walk it again.
    gc.freeze()
    with errors_reported(as_json):
        result = _service().add_detailed(path, name, message=message)
    v = result.version
    if as_json:
        print_json(
            {
                **version_dict(v),
                "created": result.created,
                "hashed": result.hashed,
                "new_objects": result.new_objects,
                "seconds": result.seconds,
            }
        )
        return
    what = "added" if result.created else "unchanged, still"
    typer.echo(
        f"{what} {v.ref} ({v.file_count} files, {_size(v.size)}, digest {v.digest[:12]}; "
        f"{result.hashed} hashed, {result.new_objects} new objects, {result.seconds:.2f} s)"
    )


@app.command("list")
def list_datasets(as_json: JSON = False) -> None:
    """List datasets with their latest version."""
    with errors_reported(as_json):
        found = _service().list_datasets()
    if as_json:
        print_json(
            [{"name": d.name, "versions": d.versions, "latest": d.latest_version} for d in found]
        )
        return
    print_table(
        f"Datasets ({len(found)})",
        ["name", "versions", "latest", "created"],
        [(d.name, d.versions, f"v{d.latest_version}", _when(d.created_at)) for d in found],
    )


@app.command("show")
def show(ref: REF, as_json: JSON = False) -> None:
    """NAME: its versions and tag history; NAME@v: that version and its files."""
    from keel.core._data import DatasetRef

    with errors_reported(as_json):
        parsed = DatasetRef.parse(ref)
        service = _service()
        if parsed.version is None and parsed.tag is None:
            versions = service.list_versions(parsed.name)
            moves = service.tag_history(parsed.name)
            if as_json:
                print_json(
                    {
                        "name": parsed.name,
                        "versions": [version_dict(v) for v in versions],
                        "tag_history": [
                            {
                                "tag": m.tag,
                                "version": m.version,
                                "previous": m.previous_version,
                                "moved_at": m.moved_at,
                            }
                            for m in moves
                        ],
                    }
                )
                return
            _versions_table(f"{parsed.name} ({len(versions)} versions)", versions)
            if moves:
                print_table(
                    "Tag history",
                    ["tag", "to", "from", "moved"],
                    [
                        (
                            m.tag,
                            f"v{m.version}",
                            "" if m.previous_version is None else f"v{m.previous_version}",
                            _when(m.moved_at),
                        )
                        for m in moves
                    ],
                )
            return
        version = service.get_version(parsed)
        entries = service.manifest(version)
    if as_json:
        print_json(
            {
                **version_dict(version),
                "schema": version.schema,
                "profile": version.profile,
                "files_list": [
                    {"path": e.path, "size": e.size, "digest": e.digest} for e in entries
                ],
            }
        )
        return
    _versions_table(version.ref, [version])
    shown = entries[:50]
    print_table(
        f"Files ({len(entries)}{', first 50' if len(entries) > 50 else ''})",
        ["path", "size", "digest"],
        [(e.path, _size(e.size), e.digest[:12]) for e in shown],
    )


@app.command("diff")
def diff(a: REF, b: REF, as_json: JSON = False) -> None:
    """Files added, removed and modified from version A to version B."""
    with errors_reported(as_json):
        result = _service().diff(a, b)
    if as_json:
        print_json(result.to_dict())
        return
    rows: list[tuple[str, str, str]] = []
    rows += [("added", e.path, _size(e.size)) for e in result.added]
    rows += [("removed", e.path, _size(e.size)) for e in result.removed]
    rows += [
        ("modified", old.path, f"{_size(old.size)} -> {_size(new.size)}")
        for old, new in result.modified
    ]
    print_table(
        f"{result.a.ref} -> {result.b.ref} ({result.unchanged} unchanged)",
        ["change", "path", "size"],
        rows,
    )


@app.command("tag")
def tag(
    ref: REF, tag_name: Annotated[str, typer.Argument(help="e.g. prod")], as_json: JSON = False
) -> None:
    """Point TAG at a version (a tag moves; its history is kept)."""
    with errors_reported(as_json):
        version = _service().tag(ref, tag_name)
    if as_json:
        print_json(version_dict(version))
        return
    typer.echo(f"{version.name}@{tag_name} -> {version.ref}")


@app.command("get")
def get(
    ref: REF,
    output: Annotated[Path, typer.Option("--output", "-o", help="Directory to restore into.")],
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
    as_json: JSON = False,
) -> None:
    """Restore a version's files into a directory (never overwrites without --force)."""
    with errors_reported(as_json):
        service = _service()
        version = service.get_version(ref)
        written = service.get(version, output, force=force)
    if as_json:
        print_json({"ref": version.ref, "path": str(written), "files": version.file_count})
        return
    typer.echo(f"restored {version.ref} ({version.file_count} files) to {written}")


@app.command("lineage")
def lineage(ref: REF, as_json: JSON = False) -> None:
    """Where a version came from, versions derived from it, and runs that used it."""
    with errors_reported(as_json):
        found = _service().lineage(ref)
    if as_json:
        print_json(
            {
                "version": version_dict(found.version),
                "parents": [version_dict(v) for v in found.parents],
                "children": [version_dict(v) for v in found.children],
                "runs": [
                    {
                        "run_id": r.run_id,
                        "name": r.run_name,
                        "experiment": r.experiment,
                        "status": r.status,
                        "logged_at": r.logged_at,
                    }
                    for r in found.runs
                ],
            }
        )
        return
    rows: list[tuple[str, str, str]] = []
    rows += [("parent", v.ref, v.message) for v in found.parents]
    rows += [("child", v.ref, v.message) for v in found.children]
    rows += [("run", r.run_id, f"{r.experiment}/{r.run_name} {r.status}") for r in found.runs]
    print_table(f"Lineage of {found.version.ref}", ["relation", "what", "detail"], rows)
