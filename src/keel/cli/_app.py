"""The root Typer application and its command groups."""

from __future__ import annotations

from typing import Annotated

import typer

from keel._version import __version__
from keel.cli import (
    _config,
    _data,
    _data_quality,
    _demo,
    _deploy,
    _experiments,
    _models,
    _models_validate,
    _monitor,
    _predict,
    _runs,
    _serve,
)

app = typer.Typer(
    name="keel",
    help="Keel: data, experiments, models, serving and monitoring in one tool.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Keel: data, experiments, models, serving and monitoring in one tool."""


app.add_typer(_experiments.app, name="experiments")
app.add_typer(_runs.app, name="runs")
_data_quality.register(_data.app)
app.add_typer(_data.app, name="data")
_models_validate.register(_models.app)
app.add_typer(_models.app, name="models")
app.add_typer(_deploy.app, name="deploy")
app.add_typer(_monitor.app, name="monitor")
app.command("config")(_config.show_config)
app.command("demo")(_demo.demo)
app.command("serve")(_serve.serve)
app.command("predict")(_predict.predict)
