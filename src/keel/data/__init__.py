"""Data: versioned datasets, schemas and profiles, validation, splits and lineage.

``keel.data.add(path, name)`` versions a file or directory, ``keel.data.get(ref, dest)``
restores it, ``keel.data.load("credit@prod")`` reads a tabular version into pandas.
These module-level functions are resolved on first use from ``keel._fluent_data``,
which binds them to the process context; ``DataService`` is the service itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.core._lazy import lazy_exports

if TYPE_CHECKING:
    from keel._fluent_data import (
        add,
        add_frame,
        diff,
        get,
        get_version,
        lineage,
        list_datasets,
        list_versions,
        load,
        manifest,
        service,
        split,
        tag,
    )
    from keel.core._data import DatasetRef, DatasetVersion, ManifestEntry
    from keel.data._leakage import LeakageFinding, LeakageReport, check_leakage
    from keel.data._profile import TableProfile, profile_file, profile_frame
    from keel.data._report import ValidationReport
    from keel.data._schema import Schema, infer_schema
    from keel.data._service import AddResult, DataService, DatasetDiff, Lineage
    from keel.data._split import BalanceReport, SplitResult
    from keel.data._validate import DataValidator, validate

_EXPORTS: dict[str, str] = {
    "AddResult": "keel.data._service",
    "BalanceReport": "keel.data._split",
    "DataService": "keel.data._service",
    "DataValidator": "keel.data._validate",
    "DatasetDiff": "keel.data._service",
    "DatasetRef": "keel.core._data",
    "DatasetVersion": "keel.core._data",
    "LeakageFinding": "keel.data._leakage",
    "LeakageReport": "keel.data._leakage",
    "Lineage": "keel.data._service",
    "ManifestEntry": "keel.core._data",
    "Schema": "keel.data._schema",
    "SplitResult": "keel.data._split",
    "TableProfile": "keel.data._profile",
    "ValidationReport": "keel.data._report",
    "add": "keel._fluent_data",
    "add_frame": "keel._fluent_data",
    "check_leakage": "keel.data._leakage",
    "diff": "keel._fluent_data",
    "get": "keel._fluent_data",
    "get_version": "keel._fluent_data",
    "infer_schema": "keel.data._schema",
    "lineage": "keel._fluent_data",
    "list_datasets": "keel._fluent_data",
    "list_versions": "keel._fluent_data",
    "load": "keel._fluent_data",
    "manifest": "keel._fluent_data",
    "profile_file": "keel.data._profile",
    "profile_frame": "keel.data._profile",
    "service": "keel._fluent_data",
    "split": "keel._fluent_data",
    "tag": "keel._fluent_data",
    "validate": "keel.data._validate",
}

__all__ = [
    "AddResult",
    "BalanceReport",
    "DataService",
    "DataValidator",
    "DatasetDiff",
    "DatasetRef",
    "DatasetVersion",
    "LeakageFinding",
    "LeakageReport",
    "Lineage",
    "ManifestEntry",
    "Schema",
    "SplitResult",
    "TableProfile",
    "ValidationReport",
    "add",
    "add_frame",
    "check_leakage",
    "diff",
    "get",
    "get_version",
    "infer_schema",
    "lineage",
    "list_datasets",
    "list_versions",
    "load",
    "manifest",
    "profile_file",
    "profile_frame",
    "service",
    "split",
    "tag",
    "validate",
]


__getattr__ = lazy_exports(__name__, _EXPORTS)


def __dir__() -> list[str]:
    return __all__
