"""Requirements of the running environment, pinned, without spawning pip.

The packages are the flavor's libraries plus the top-level modules the model's own
classes and functions come from (found by walking the estimator's parameters, which
reaches every step of a pipeline or column transformer). Module names map to
distributions through ``importlib.metadata``; the full map is built only when a
module's distribution is not simply its own name.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterable
from importlib import metadata
from typing import Any

__all__ = ["distribution_versions", "model_modules", "pinned_requirements"]

_KNOWN = {
    "sklearn": "scikit-learn",
    "skops": "skops",
    "numpy": "numpy",
    "scipy": "scipy",
    "pandas": "pandas",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "cloudpickle": "cloudpickle",
    "keel": "keel-mlops",
}
_MAX_OBJECTS = 10_000


def model_modules(model: Any) -> set[str]:
    """Top-level module names of the classes and functions ``model`` is made of."""
    roots: set[str] = set()
    seen: set[int] = set()
    stack = [model]
    while stack and len(seen) < _MAX_OBJECTS:
        obj = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float | bool):
            continue
        seen.add(id(obj))
        module = obj.__module__ if callable(obj) and not hasattr(obj, "get_params") else None
        module = module or type(obj).__module__
        if isinstance(module, str):
            roots.add(module.partition(".")[0])
        if isinstance(obj, list | tuple):
            stack.extend(obj)
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif hasattr(obj, "get_params") and not isinstance(obj, type):
            try:
                stack.extend(obj.get_params(deep=False).values())
            except Exception:  # noqa: S112 - a broken get_params only loses a pin
                continue
    return {r for r in roots if r not in sys.stdlib_module_names and r not in ("__main__", "")}


@functools.cache
def _module_distributions() -> dict[str, list[str]]:
    return dict(metadata.packages_distributions())


def distribution_versions(modules: Iterable[str]) -> dict[str, str]:
    """``{distribution: version}`` for the installed distributions providing ``modules``."""
    found: dict[str, str] = {}
    for module in sorted(set(modules)):
        names = [_KNOWN[module]] if module in _KNOWN else [module]
        for name in names:
            try:
                found[name] = metadata.version(name)
                break
            except metadata.PackageNotFoundError:
                continue
        else:
            for dist in _module_distributions().get(module, []):
                try:
                    found[dist] = metadata.version(dist)
                except metadata.PackageNotFoundError:
                    continue
    return found


def pinned_requirements(versions: dict[str, str]) -> tuple[str, ...]:
    """``name==version`` lines, sorted by name."""
    return tuple(f"{name}=={version}" for name, version in sorted(versions.items()))
