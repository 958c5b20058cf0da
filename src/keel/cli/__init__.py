"""The ``keel`` command line: thin commands that parse, call one service, render.

Importing this package loads Typer only; every command imports what it needs when it
runs, so ``keel --help`` starts fast (a test checks that no heavy library is loaded).
"""

from __future__ import annotations

import sys

from keel.cli._app import app

__all__ = ["app", "main"]


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="keel")
