"""The module-level data API behind ``keel.data.add``, ``keel.data.get`` and friends.

Each function calls the process context's ``DataService``; ``keel.data`` resolves these
names lazily, so ``import keel.data`` stays light and the service layer itself never
reads configuration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.context import get_context
from keel.core._data import DatasetRef, DatasetVersion, ManifestEntry
from keel.data._service import DataService, DatasetDiff, Lineage
from keel.stores.metadata._datasets import DatasetSummary

if TYPE_CHECKING:
    import pandas as pd

    from keel.data._split import SplitResult

__all__ = [
    "add",
    "add_frame",
    "diff",
    "get",
    "get_version",
    "lineage",
    "list_datasets",
    "list_versions",
    "load",
    "manifest",
    "service",
    "split",
    "tag",
]

Ref = str | DatasetRef | DatasetVersion


def service() -> DataService:
    """This process's data service (the one the module-level functions use)."""
    return get_context().data


def add(
    path: str | Path,
    name: str,
    message: str | None = None,
    *,
    parents: Sequence[DatasetVersion | str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> DatasetVersion:
    """Version a file or directory as ``name``; unchanged content returns the latest version."""
    return service().add(path, name, message=message, parents=parents, metadata=metadata)


def add_frame(
    df: pd.DataFrame,
    name: str,
    *,
    message: str = "",
    parents: Sequence[DatasetVersion] = (),
    metadata: Mapping[str, Any] | None = None,
) -> DatasetVersion:
    """Version a DataFrame (stored as Parquet), recording the versions it came from."""
    return service().add_frame(df, name, message=message, parents=parents, metadata=metadata)


def get(ref: Ref, dest: str | Path, *, force: bool = False) -> Path:
    """Restore a version's files under ``dest``; never overwrites unless ``force``."""
    return service().get(ref, dest, force=force)


def load(ref: Ref) -> pd.DataFrame:
    """A tabular version as a DataFrame: ``keel.data.load("credit@prod")``."""
    return service().load(ref)


def get_version(ref: Ref) -> DatasetVersion:
    """The version ``ref`` names (``NAME``, ``NAME@v3``, ``NAME@TAG``)."""
    return service().get_version(ref)


def manifest(ref: Ref) -> list[ManifestEntry]:
    """The files (relative path, size, digest) of a version."""
    return service().manifest(ref)


def list_datasets() -> list[DatasetSummary]:
    return service().list_datasets()


def list_versions(name: str) -> list[DatasetVersion]:
    """Every version of dataset ``name``, oldest first."""
    return service().list_versions(name)


def diff(a: Ref, b: Ref) -> DatasetDiff:
    """Files added, removed and modified from version ``a`` to version ``b``."""
    return service().diff(a, b)


def tag(ref: Ref, tag: str) -> DatasetVersion:
    """Point ``tag`` (e.g. ``prod``) at a version; the tag's history is kept."""
    return service().tag(ref, tag)


def lineage(ref: Ref) -> Lineage:
    """A version's parents, the versions derived from it and the runs that used it."""
    return service().lineage(ref)


def split(
    df: pd.DataFrame,
    target: str,
    test: float = 0.2,
    val: float = 0.1,
    stratify: bool = True,
    group: str | None = None,
    seed: int = 0,
    *,
    name: str | None = None,
    parent: Ref | None = None,
) -> SplitResult:
    """Split ``df`` (see ``keel.data._split.split``), checking for leakage.

    With ``name`` or ``parent`` each split is recorded as a dataset version
    ``{name}-train``/``-val``/``-test`` whose lineage points at ``parent``.
    """
    from keel.data._split import split as split_frame

    parent_version = None if parent is None else get_version(parent)
    record = service().add_frame if (name or parent_version) else None
    return split_frame(
        df,
        target,
        test,
        val,
        stratify,
        group,
        seed,
        record=record,
        name=name,
        parent=parent_version,
    )
