"""The public surface of ``import keel``: sorted, complete, resolvable and light to import."""

from __future__ import annotations

import ast
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

import keel
from keel import _fluent

HEAVY = ("pandas", "sklearn", "sqlalchemy", "fastapi", "numpy")
# Keel's own modules that only a command's body needs: help text must not load them.
COMMAND_BODIES = ("keel.stores", "keel.serving._batch", "keel.serving._decode", "keel.core._models")


def test_all_is_sorted_and_unique() -> None:
    assert keel.__all__ == sorted(keel.__all__)
    assert len(keel.__all__) == len(set(keel.__all__))


@pytest.mark.parametrize("name", keel.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(keel, name)
    assert value is not None
    if name != "__version__":
        assert getattr(value, "__name__", name) == name


def test_public_functions_are_the_fluent_ones() -> None:
    for name in _fluent.__all__:
        assert name in keel.__all__
        assert getattr(keel, name) is getattr(_fluent, name)


def test_version_is_a_string_matching_the_package() -> None:
    from keel._version import __version__

    assert keel.__version__ == __version__
    assert isinstance(keel.__version__, str)
    assert keel.__version__[0].isdigit()


def test_dir_lists_the_public_names() -> None:
    assert dir(keel) == keel.__all__


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        keel.no_such_thing  # noqa: B018


def test_type_checking_imports_match_the_lazy_table() -> None:
    """The names a type checker sees are exactly the names that load at run time."""
    tree = ast.parse(inspect.getsource(keel))
    seen: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            for child in node.body:
                assert isinstance(child, ast.ImportFrom)
                seen.update(alias.name for alias in child.names)
    assert seen == set(keel.__all__) - {"__version__"}


def _loaded_after(code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_import_keel_loads_no_heavy_library() -> None:
    code = (
        "import json, sys\n"
        "import keel\n"
        "keel.__version__\n"
        f"heavy = {HEAVY!r}\n"
        "print(json.dumps({'loaded': sorted(m for m in heavy if m in sys.modules)}))\n"
    )
    assert _loaded_after(code) == {"loaded": []}


def test_the_heavy_check_can_see_a_heavy_import() -> None:
    """Guard for the test above: the tracking service does load the store's libraries."""
    code = (
        "import json, sys\n"
        "import keel\n"
        "keel.start_run\n"
        "import keel.tracking\n"
        "print(json.dumps({'loaded': 'sqlalchemy' in sys.modules}))\n"
    )
    assert _loaded_after(code) == {"loaded": True}


WRAPPER = """
import atexit, json, sys
heavy = {heavy!r}

def report():
    sys.__stdout__.write("\\n" + json.dumps(
        {{"loaded": sorted(m for m in heavy if m in sys.modules), "code": code}}) + "\\n")

code = None
atexit.register(report)
import keel.cli
try:
    keel.cli.main({argv!r})
except SystemExit as exc:
    code = exc.code
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["runs", "--help"], ["experiments", "--help"], ["demo", "--help"]],
    ids=" ".join,
)
def test_cli_help_loads_no_heavy_library(argv: list[str], tmp_path: Path) -> None:
    script = tmp_path / "wrapper.py"
    script.write_text(WRAPPER.format(heavy=HEAVY[:4] + COMMAND_BODIES, argv=argv), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"loaded": [], "code": 0}
    assert "keel" in done.stdout
