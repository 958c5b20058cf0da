"""Lazy re-exports: a package names what it offers and imports each on first use."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``exports`` maps a public name to the
    module defining it (``"module:attribute"`` when it is defined under another name),
    imported on the first access and then stored in the package, so later look-ups never
    reach this function again.
    """

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attribute = module.partition(":")
        value = getattr(importlib.import_module(module), attribute or name)
        vars(sys.modules[package])[name] = value
        return value

    return __getattr__
