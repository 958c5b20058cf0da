"""skops without its start-up scans, and with explicit trust only.

``import skops.io`` builds its default trusted lists eagerly: scikit-learn's
``all_estimators()`` imports every estimator module, and the SciPy ufunc names are
found by scanning every loaded module for each ufunc. Together that is ~0.8 s and
~15 MiB per process, the largest cost of logging or loading a model in a fresh process.

Keel imports skops with both scans replaced by lazy lists, computed on first use, so
code outside Keel that relies on skops' defaults sees exactly skops' lists. Keel itself
never relies on the estimator default: every package records the complete list of types
its file holds, reviewed at save time (ADR 0011), and passes it as ``trusted`` at load.
Inside :func:`explicit_trust` (Keel's own save and load) the estimator default is
empty, so ``get_untrusted_types`` reports every type the file holds and the recorded
list is the whole trust. The ufunc lists keep skops' meaning; they are computed only
when a file holds a ufunc.
"""

from __future__ import annotations

import contextvars
import importlib
import importlib.util
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

__all__ = ["explicit_trust", "skops_default_estimator_types", "skops_io"]

_explicit = contextvars.ContextVar("keel_skops_explicit_trust", default=False)
_lock = threading.RLock()  # filling a lazy list
_import_lock = threading.Lock()
_module: ModuleType | None = None


def _estimator_type_names() -> list[str]:
    """skops' own default: the public scikit-learn estimators (imports all of them)."""
    from sklearn.utils.discovery import all_estimators
    from skops.io._utils import get_type_name

    names = (get_type_name(cls) for _, cls in all_estimators())
    return [name for name in names if name.startswith("sklearn.")]


class _LazyTypeNames(list):  # type: ignore[type-arg]
    """One of skops' default type lists, computed on first use.

    With ``explicit`` set, the list is empty inside :func:`explicit_trust`.
    """

    def __init__(self, compute: Callable[[], list[str]], *, explicit: bool = False) -> None:
        super().__init__()
        self._compute: Callable[[], list[str]] | None = compute
        self._explicit = explicit

    def _view(self) -> list[str]:
        if self._explicit and _explicit.get():
            return []
        if self._compute is not None:
            with _lock:
                if self._compute is not None:
                    names, self._compute = self._compute(), None
                    list.extend(self, names)
        return list.copy(self)

    def __add__(self, other: Any) -> list[str]:  # type: ignore[override]
        return self._view() + list(other)

    def __radd__(self, other: Any) -> list[str]:
        return list(other) + self._view()

    def __iter__(self) -> Iterator[str]:
        return iter(self._view())

    def __len__(self) -> int:
        return len(self._view())

    def __contains__(self, item: object) -> bool:
        return item in self._view()

    def __getitem__(self, index: Any) -> Any:
        return self._view()[index]

    def __eq__(self, other: object) -> bool:
        return self._view() == other

    __hash__ = None

    def __repr__(self) -> str:
        return repr(self._view())


def skops_io() -> ModuleType:
    """``skops.io``, imported once without the start-up scans."""
    global _module
    if _module is not None:
        return _module
    with _import_lock:
        if _module is None:
            _module = _import()
    return _module


def _import() -> ModuleType:
    if "skops.io" in sys.modules:  # imported before Keel: skops' lists are computed
        import skops.io

        return _install_estimator_list(skops.io, computed=True)
    import sklearn.utils
    import skops

    # Register the package before running its __init__, so that its helper module can
    # be given a lazy type-name scan before the module that calls it at import runs.
    spec = importlib.util.find_spec("skops.io")
    if spec is None or spec.loader is None:  # pragma: no cover - skops is a dependency
        raise ImportError("skops.io is not installed; pip install skops")
    package = importlib.util.module_from_spec(spec)
    sys.modules["skops.io"] = package
    original_estimators = sklearn.utils.all_estimators
    try:
        utils: Any = importlib.import_module("skops.io._utils")
        scan = getattr(utils, "get_public_type_names", None)
        if scan is not None:  # a skops without it simply pays its scan
            utils.get_public_type_names = lambda module, oftype: _LazyTypeNames(
                lambda: scan(module=module, oftype=oftype)
            )
        sklearn.utils.all_estimators = lambda *a, **k: []
        try:
            spec.loader.exec_module(package)
        finally:
            if scan is not None:
                utils.get_public_type_names = scan
            sklearn.utils.all_estimators = original_estimators
    except BaseException:
        for name in [n for n in sys.modules if n == "skops.io" or n.startswith("skops.io.")]:
            del sys.modules[name]
        raise
    skops.io = package
    return _install_estimator_list(package, computed=False)


def _install_estimator_list(package: ModuleType, *, computed: bool) -> ModuleType:
    import skops.io._general as general
    import skops.io._trusted_types as trusted_types

    lazy = _LazyTypeNames(_estimator_type_names, explicit=True)
    if computed:
        list.extend(lazy, list(trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES))
        lazy._compute = None
    trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES = lazy
    general.SKLEARN_ESTIMATOR_TYPE_NAMES = lazy
    return package


def skops_default_estimator_types() -> list[str]:
    """skops' default estimator list, for packages whose recorded trust is not complete."""
    token = _explicit.set(False)
    try:
        skops_io()
        import skops.io._trusted_types as trusted_types

        return list(trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)
    finally:
        _explicit.reset(token)


@contextmanager
def explicit_trust() -> Iterator[ModuleType]:
    """``skops.io`` with an empty default estimator list, for this thread or task."""
    sio = skops_io()
    token = _explicit.set(True)
    try:
        yield sio
    finally:
        _explicit.reset(token)
