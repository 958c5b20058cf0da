"""``keel data validate`` and ``keel data schema infer``: check data, write its schema.

TARGET is a local CSV, Parquet or JSON Lines file, or a dataset reference (``NAME@v3``)
restored to a scratch directory through the data service. ``--reference`` takes a data
file, a saved profile (``.json``), or a dataset reference whose stored profile is used.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from keel.cli._output import errors_reported, print_json, print_table
from keel.errors import InvalidArgument

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
TARGET = Annotated[
    str, typer.Argument(help="A CSV, Parquet or JSON Lines file, or a dataset NAME@v3.")
]


def register(app: typer.Typer) -> None:
    """Add ``validate`` and the ``schema`` group to the ``keel data`` app."""
    app.command("validate")(validate_command)
    schema_app = typer.Typer(
        help="Schemas: editable expectations for tables.", no_args_is_help=True
    )
    schema_app.command("infer")(infer_command)
    app.add_typer(schema_app, name="schema")


@contextmanager
def resolve_target(text: str) -> Iterator[Path]:
    """A local file for ``text``: the path itself, or a dataset version restored to a
    scratch directory that is removed afterwards."""
    path = Path(text).expanduser()
    if path.exists() or "@" not in text:
        yield path
        return
    from keel.context import get_context

    with get_context().data.tabular_file(text) as restored:
        yield restored


def resolve_reference(text: str) -> Mapping[str, Any]:
    """A reference profile from a saved profile (JSON), a data file, or ``NAME@v``."""
    path = Path(text).expanduser()
    if path.suffix.lower() == ".json" and path.is_file():
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InvalidArgument(f"cannot read reference profile {text!r}: {exc}") from exc
        if not isinstance(loaded, Mapping):
            raise InvalidArgument(f"{text!r} is not a profile; save one with `--json`")
        return loaded
    if path.exists() or "@" not in text:
        from keel.data._profile import profile_file

        described = profile_file(path)
        if described is None:
            raise InvalidArgument(
                f"{text!r} is not a CSV, Parquet or JSON Lines file; give one as --reference"
            )
        return described
    from keel.context import get_context

    return get_context().data.profile_of(text)


def validate_command(
    target: TARGET,
    schema: Annotated[
        Path | None, typer.Option("--schema", "-s", help="Schema YAML (keel data schema infer).")
    ] = None,
    reference: Annotated[
        str | None,
        typer.Option("--reference", "-r", help="Reference data file, profile JSON or NAME@v."),
    ] = None,
    html: Annotated[
        Path | None, typer.Option("--html", help="Also write a self-contained HTML report.")
    ] = None,
    as_json: JSON = False,
) -> None:
    """Validate data against a schema and a reference; exit status 1 when a check fails."""
    from keel.data._validate import validate

    with errors_reported(as_json):
        reference_profile = resolve_reference(reference) if reference else None
        with resolve_target(target) as path:
            report = validate(path, schema, reference_profile)
        report.target = target
        if html is not None:
            report.to_html(html)
    if as_json:
        print_json(report.to_dict())
    else:
        rows = [
            (
                r.status,
                r.expectation,
                r.column or "",
                _cell(r.observed),
                _cell(r.expected),
                r.message,
            )
            for r in sorted(report.results, key=lambda r: (r.passed, r.column or ""))
        ]
        verdict = "passed" if report.passed else "FAILED"
        print_table(
            f"Validation of {target}: {verdict} ({report.rows} rows)",
            ["status", "expectation", "column", "observed", "expected", "message"],
            rows,
        )
    if html is not None and not as_json:
        typer.echo(f"wrote {html}", err=True)
    if not report.passed:
        raise typer.Exit(code=1)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def infer_command(target: TARGET, as_json: JSON = False) -> None:
    """Print an editable schema inferred from the data (YAML; JSON with --json)."""
    from keel.data._profile import profile_path
    from keel.data._read import detect_format
    from keel.data._schema import infer_schema

    with errors_reported(as_json), resolve_target(target) as path:
        fmt = detect_format(path) if path.is_file() else "csv"
        if fmt is None:
            raise InvalidArgument(
                f"{target!r} is not a CSV, Parquet or JSON Lines file; give one of those"
            )
        schema = infer_schema(profile_path(path, fmt))
    if as_json:
        print_json(schema.to_dict())
    else:
        typer.echo(schema.to_yaml(), nl=False)
