"""The package's public names: sorted, resolvable, and light to import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import keel.monitoring


def test_all_is_sorted_and_every_name_resolves() -> None:
    assert keel.monitoring.__all__ == sorted(keel.monitoring.__all__)
    assert dir(keel.monitoring) == keel.monitoring.__all__
    for name in keel.monitoring.__all__:
        assert getattr(keel.monitoring, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        keel.monitoring.nope  # noqa: B018


def test_importing_the_package_loads_no_heavy_library() -> None:
    code = (
        "import json, sys\nimport keel.monitoring\n"
        "print(json.dumps([m for m in ('numpy', 'pandas', 'pyarrow', 'matplotlib', 'scipy') "
        "if m in sys.modules]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
