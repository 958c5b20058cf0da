"""The data service: version files and directories, restore them, tag them, trace them.

``add`` scans the path, takes digests of unchanged files from the stat cache and
hashes the rest in parallel, stages new objects, stores the manifest, and only then
writes the version row, in one transaction. A failure at any step before that leaves
no version behind and no new object visible (see docs/adr/0007-data-versioning.md).
"""

from __future__ import annotations

import gc
import importlib
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.core._data import DatasetRef, DatasetVersion, ManifestEntry, validate_dataset_name
from keel.core._data import validate_dataset_tag as _validate_tag
from keel.data._manifest import ScannedFile, decode_manifest, manifest_bytes, scan
from keel.data._restore import TABULAR_SUFFIXES, load_frame, restore, tabular_format
from keel.data._statcache import StatCache, now_ns
from keel.errors import InvalidArgument
from keel.stores.artifacts import ArtifactStore, SourceFile
from keel.stores.artifacts._bulk import default_workers
from keel.stores.metadata._datasets import (
    DatasetCatalog,
    DatasetSummary,
    NewVersion,
    RunUse,
    TagMove,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["AddResult", "DataService", "DatasetDiff", "Lineage"]

log = logging.getLogger(__name__)

MAX_PROFILED_FILES = 100
"""A directory with more tabular files than this gets no per-file schema and profile."""

ProfileFunction = Callable[[Path], "dict[str, Any] | None"]


@dataclass(frozen=True)
class AddResult:
    """What ``add`` did: the version, whether it is new, and how much work it took."""

    version: DatasetVersion
    created: bool
    files: int
    hashed: int
    new_objects: int
    seconds: float


@dataclass(frozen=True)
class DatasetDiff:
    """Files added, removed and modified between two versions (relative paths)."""

    a: DatasetVersion
    b: DatasetVersion
    added: list[ManifestEntry]
    removed: list[ManifestEntry]
    modified: list[tuple[ManifestEntry, ManifestEntry]]
    unchanged: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a.ref,
            "b": self.b.ref,
            "added": [_entry(e) for e in self.added],
            "removed": [_entry(e) for e in self.removed],
            "modified": [
                {"path": old.path, "size": [old.size, new.size], "digest": [old.digest, new.digest]}
                for old, new in self.modified
            ],
            "unchanged": self.unchanged,
        }


@dataclass(frozen=True)
class Lineage:
    """Where a version came from and what was built from it."""

    version: DatasetVersion
    parents: list[DatasetVersion]
    children: list[DatasetVersion]
    runs: list[RunUse]


def _entry(e: ManifestEntry) -> dict[str, Any]:
    return {"path": e.path, "size": e.size, "digest": e.digest}


class DataService:
    """Dataset versions over the metadata catalog, the artifact store and a stat cache."""

    def __init__(
        self,
        catalog: DatasetCatalog,
        artifacts: ArtifactStore,
        *,
        stat_cache: Path | None = None,
        ignore: Sequence[Path] = (),
        workers: int | None = None,
        profile: ProfileFunction | None = None,
    ) -> None:
        self.catalog = catalog
        self.artifacts = artifacts
        self.stat_cache = StatCache(stat_cache)
        self.ignore = tuple(ignore)
        self.workers = workers or default_workers()
        self._profile = profile

    def close(self) -> None:
        self.stat_cache.close()

    # adding -------------------------------------------------------------------------

    def add(
        self,
        path: str | Path,
        name: str,
        *,
        message: str | None = None,
        parents: Sequence[DatasetVersion | str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> DatasetVersion:
        """Version the file or directory at ``path`` as dataset ``name``."""
        return self.add_detailed(
            path, name, message=message, parents=parents, metadata=metadata
        ).version

    def add_detailed(
        self,
        path: str | Path,
        name: str,
        *,
        message: str | None = None,
        parents: Sequence[DatasetVersion | str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> AddResult:
        """``add``, also saying whether a version was created and what was hashed."""
        started = time.perf_counter()
        validate_dataset_name(name)
        if message is not None and not isinstance(message, str):
            raise InvalidArgument(f"message must be text, got {type(message).__name__}")
        parent_ids = [self._version_id(p) for p in parents]
        source = Path(path).expanduser()
        scan_started = now_ns()
        with _no_cycle_collection():  # tens of thousands of tuples, none of them cyclic
            kind, files = scan(source, self.ignore)
            root = source.resolve() if kind == "directory" else source.absolute()
            hit = self.stat_cache.lookup(root, kind, files)
            cached = hit.digests
            known: str | None = None  # the manifest digest, when no byte needs reading
            if not parent_ids:
                known = hit.manifest
                if known is None and None not in cached:
                    rows = [
                        (f.relpath, f.size, d)
                        for f, d in zip(files, cached, strict=True)
                        if d is not None
                    ]
                    known = _digest(manifest_bytes(kind, rows))
        if known is not None:
            latest = self._latest_if(name, known)
            if latest is not None:
                return AddResult(latest, False, len(files), 0, 0, time.perf_counter() - started)
        sources = [SourceFile(f.path, f.size, d) for f, d in zip(files, cached, strict=True)]
        staged = self.artifacts.stage_files(sources, workers=self.workers)
        try:
            entries = [
                (f.relpath, r.size, r.digest) for f, r in zip(files, staged.refs, strict=True)
            ]
            manifest = manifest_bytes(kind, entries)
            digest = _digest(manifest)
            latest = None if parent_ids else self._latest_if(name, digest)
            schema, profile = (None, None) if latest else self._describe(kind, files)
            staged.commit()
        except BaseException:
            staged.discard()
            raise
        if hit.manifest != digest:
            self.stat_cache.store(root, kind, files, [e[2] for e in entries], digest, scan_started)
        hashed = sum(1 for c in cached if c is None)
        if latest is not None:
            return AddResult(latest, False, len(files), hashed, 0, time.perf_counter() - started)
        self.artifacts.put_bytes(manifest)
        version, created = self.catalog.commit_version(
            name,
            NewVersion(
                digest=digest,
                file_count=len(entries),
                size=sum(e[1] for e in entries),
                kind=kind,
                message=message or "",
                schema=schema,
                profile=profile,
                metadata=metadata,
                parents=parent_ids,
            ),
        )
        return AddResult(
            version, created, len(files), hashed, staged.new_objects, time.perf_counter() - started
        )

    def add_frame(
        self,
        df: pd.DataFrame,
        name: str,
        *,
        message: str = "",
        parents: Sequence[DatasetVersion] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> DatasetVersion:
        """Version a DataFrame as one Parquet file ``<name>.parquet``, with its lineage."""
        validate_dataset_name(name)
        with tempfile.TemporaryDirectory(prefix="keel-frame-") as scratch:
            target = Path(scratch) / f"{name}.parquet"
            try:
                df.to_parquet(target, index=False)
            except (ValueError, TypeError, ImportError) as error:
                raise InvalidArgument(
                    f"cannot write the DataFrame for {name!r} as Parquet: {error}; "
                    "make column names strings and values Parquet types"
                ) from None
            return self.add(target, name, message=message, parents=parents, metadata=metadata)

    def _latest_if(self, name: str, digest: str) -> DatasetVersion | None:
        """The latest version of ``name`` when its digest is ``digest``, else None."""
        from keel.errors import NotFound

        try:
            latest = self.catalog.resolve(DatasetRef(name))
        except NotFound:
            return None
        return latest if latest.digest == digest else None

    def _describe(
        self, kind: str, files: Sequence[ScannedFile]
    ) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """Schema and profile of tabular content, when a profiler is installed."""
        suffixes = tuple(TABULAR_SUFFIXES)
        tabular = [
            f
            for f in files
            if f.relpath.lower().endswith(suffixes) and tabular_format(f.relpath) is not None
        ]
        if not tabular or len(tabular) > MAX_PROFILED_FILES:
            return None, None  # before importing the profiler: it loads numpy
        profile_file = self._profiler()
        if profile_file is None:
            return None, None
        if kind == "file":
            described = profile_file(Path(files[0].path))
            if described is None:
                return None, None
            return described.get("schema"), described.get("profile")
        schemas: dict[str, Any] = {}
        profiles: dict[str, Any] = {}
        for f in tabular:
            described = profile_file(Path(f.path))
            if described is not None:
                schemas[f.relpath] = described.get("schema")
                profiles[f.relpath] = described.get("profile")
        if not schemas:
            return None, None
        return {"files": schemas}, {"files": profiles}

    def _profiler(self) -> ProfileFunction | None:
        if self._profile is not None:
            return self._profile
        try:
            module = importlib.import_module("keel.data._profile")
        except ModuleNotFoundError as error:
            if error.name != "keel.data._profile":
                raise
            return None
        function: ProfileFunction | None = getattr(module, "profile_file", None)
        return function

    # reading ------------------------------------------------------------------------

    def get_version(self, ref: str | DatasetRef | DatasetVersion) -> DatasetVersion:
        """The version ``ref`` names: ``NAME``, ``NAME@v3``, ``NAME@prod``."""
        if isinstance(ref, DatasetVersion):
            return self.catalog.get_by_id(ref.id)
        return self.catalog.resolve(ref if isinstance(ref, DatasetRef) else DatasetRef.parse(ref))

    def manifest(self, ref: str | DatasetRef | DatasetVersion) -> list[ManifestEntry]:
        """The files of a version, sorted by relative path."""
        version = self.get_version(ref)
        return decode_manifest(self.artifacts.get_bytes(version.digest), version.digest)[1]

    @contextmanager
    def tabular_file(self, ref: str | DatasetRef | DatasetVersion) -> Iterator[Path]:
        """A scratch copy of the one tabular file of a version, removed afterwards."""
        from keel.data._read import detect_format

        with tempfile.TemporaryDirectory(prefix="keel-data-") as scratch:
            restored = self.get(ref, Path(scratch) / "data")
            if restored.is_dir():
                tabular = [
                    p for p in sorted(restored.rglob("*")) if p.is_file() and detect_format(p)
                ]
                if len(tabular) != 1:
                    raise InvalidArgument(
                        f"{ref} holds {len(tabular)} tabular files; use one file at a time "
                        f"(restore them with `keel data get {ref} -o DIR`)"
                    )
                restored = tabular[0]
            yield restored

    def profile_of(self, ref: str | DatasetRef | DatasetVersion) -> dict[str, Any]:
        """The stored profile of a version's one tabular file (a monitoring reference)."""
        version = self.get_version(ref)
        profile = version.profile
        if not profile:
            raise InvalidArgument(
                f"{version.ref} has no stored profile (it is not tabular); give a data file "
                "as the reference"
            )
        files = profile.get("files")
        if isinstance(files, Mapping):
            if len(files) != 1:
                raise InvalidArgument(
                    f"{version.ref} holds {len(files)} tabular files; give one file as the "
                    "reference"
                )
            return dict(next(iter(files.values())))
        return dict(profile)

    def get(
        self, ref: str | DatasetRef | DatasetVersion, dest: str | Path, *, force: bool = False
    ) -> Path:
        """Restore a version's files under ``dest``; returns the file (or directory) written."""
        version = self.get_version(ref)
        entries = self.manifest(version)
        target = Path(dest).expanduser()
        restore(
            self.artifacts, entries, target, force=force, label=version.ref, workers=self.workers
        )
        if version.kind == "file":
            return target / entries[0].path
        return target

    def load(self, ref: str | DatasetRef | DatasetVersion) -> pd.DataFrame:
        """A tabular version as a DataFrame (Parquet, CSV, JSON Lines; parts concatenated)."""
        version = self.get_version(ref)
        with tempfile.TemporaryDirectory(prefix="keel-load-") as scratch:
            return load_frame(self.artifacts, self.manifest(version), version.ref, Path(scratch))

    def list_datasets(self) -> list[DatasetSummary]:
        return self.catalog.list_datasets()

    def list_versions(self, name: str) -> list[DatasetVersion]:
        return self.catalog.list_versions(validate_dataset_name(name))

    def tag_history(self, name: str) -> list[TagMove]:
        return self.catalog.tag_history(validate_dataset_name(name))

    def diff(
        self, a: str | DatasetRef | DatasetVersion, b: str | DatasetRef | DatasetVersion
    ) -> DatasetDiff:
        """Which files differ between versions ``a`` and ``b``."""
        va, vb = self.get_version(a), self.get_version(b)
        old = {e.path: e for e in self.manifest(va)}
        new = {e.path: e for e in self.manifest(vb)}
        added = [new[p] for p in sorted(new.keys() - old.keys())]
        removed = [old[p] for p in sorted(old.keys() - new.keys())]
        common = sorted(old.keys() & new.keys())
        modified = [(old[p], new[p]) for p in common if old[p].digest != new[p].digest]
        return DatasetDiff(va, vb, added, removed, modified, len(common) - len(modified))

    # tags and lineage ---------------------------------------------------------------

    def tag(self, ref: str | DatasetRef | DatasetVersion, tag: str) -> DatasetVersion:
        """Point ``tag`` at a version (moving it if it pointed elsewhere; history kept)."""
        _validate_tag(tag)
        if isinstance(ref, DatasetVersion):
            ref = DatasetRef(ref.name, version=ref.version)
        elif not isinstance(ref, DatasetRef):
            ref = DatasetRef.parse(ref)
        version, _ = self.catalog.set_tag(ref, tag)
        return self.catalog.get_by_id(version.id)

    def lineage(self, ref: str | DatasetRef | DatasetVersion) -> Lineage:
        """The version's parents, the versions derived from it and the runs that used it."""
        version = self.get_version(ref)
        parents = [self.get_version(p) for p in version.parents]
        return Lineage(
            version, parents, self.catalog.children(version.id), self.catalog.runs_using(version.id)
        )

    def log_input(self, run_id: str, ref: str | DatasetRef | DatasetVersion) -> DatasetVersion:
        """Record that run ``run_id`` used the version ``ref``."""
        version = self.get_version(ref)
        self.catalog.record_input(run_id, version.id)
        return version

    def run_inputs(self, run_id: str) -> list[DatasetVersion]:
        return self.catalog.run_inputs(run_id)

    def _version_id(self, parent: DatasetVersion | str) -> str:
        return self.get_version(parent).id


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic garbage collector (it would rescan every new tuple many times)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _digest(data: bytes) -> str:
    from keel.stores.artifacts._base import new_hasher

    return str(new_hasher(len(data)).update(data).hexdigest())
