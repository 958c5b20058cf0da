"""Restoring a dataset version's files, and reading tabular versions into pandas.

Loose objects are copied out of the store by reflink where the filesystem can share
blocks (``FICLONE``: Btrfs, XFS), else by an in-kernel ``copy_file_range``, else by a
stream; packed objects (small files) are read as one slice of their pack. Every copy
is verified against its digest before it is renamed into place, so a corrupt object
never lands.
Hard links are not used: a user editing a restored file in place would change the
store's object under every version that shares it. An existing file is overwritten
only when asked (``force``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from keel.core._data import ManifestEntry
from keel.errors import Conflict, IntegrityError, InvalidArgument
from keel.stores.artifacts import ArtifactStore, clone_file
from keel.stores.artifacts._base import CHUNK_SIZE, new_hasher, temporary_name
from keel.stores.artifacts._bulk import parallel_map

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TABULAR_SUFFIXES", "load_frame", "restore", "tabular_format"]

_IN_MEMORY = 1024 * 1024  # objects read whole into memory when they have no local path

TABULAR_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def tabular_format(path: str) -> str | None:
    """``parquet``, ``csv``, ``tsv`` or ``jsonl`` from a file name, else None."""
    return TABULAR_SUFFIXES.get(os.path.splitext(path)[1].lower())


def restore(
    store: ArtifactStore,
    entries: Sequence[ManifestEntry],
    dest: Path,
    *,
    force: bool,
    label: str,
    workers: int = 8,
) -> None:
    """Write ``entries`` under the directory ``dest``; refuse to overwrite unless ``force``."""
    if dest.exists() and not dest.is_dir():
        raise InvalidArgument(f"{dest} is a file; pass a directory to restore {label} into")
    root = dest.resolve()
    targets = [root / e.path for e in entries]
    clashes = []
    for target in targets:
        if not target.resolve().is_relative_to(root):
            raise InvalidArgument(
                f"{target} leads outside {root} through a symbolic link; "
                "restore into a directory without links"
            )
        if target.is_dir():
            raise Conflict(f"{target} is a directory where {label} has a file; move it away")
        if os.path.lexists(target):
            clashes.append(target)
    if clashes and not force:
        shown = ", ".join(str(c) for c in clashes[:3])
        more = f" and {len(clashes) - 3} more" if len(clashes) > 3 else ""
        raise Conflict(
            f"{shown}{more} already exist(s); restoring {label} would overwrite them. "
            "Pass --force (force=True) to overwrite, or restore into another directory"
        )
    for parent in sorted({t.parent for t in targets}):
        parent.mkdir(parents=True, exist_ok=True)

    def write(pair: tuple[ManifestEntry, Path]) -> None:
        entry, target = pair
        _restore_one(store, entry, target)

    parallel_map(write, list(zip(entries, targets, strict=True)), workers)


def _restore_one(store: ArtifactStore, entry: ManifestEntry, target: Path) -> None:
    source = store.local_path(entry.digest)
    if source is None:  # packed, or not on a local filesystem
        if entry.size < _IN_MEMORY:
            _write_bytes(store.get_bytes(entry.digest), target)  # verified by get_bytes
        else:
            store.copy_to(entry.digest, target)
        return
    temporary = target.with_name(f".{target.name}{temporary_name()}")
    try:
        try:
            clone_file(source, temporary)
        except FileNotFoundError:
            store.size(entry.digest)  # raises the store's clear NotFound
            raise
        if _hash(temporary, entry.size) != entry.digest:
            raise IntegrityError(
                f"object {entry.digest} ({entry.path}) in {store.uri} is corrupt: its "
                "content no longer matches its digest. Add the dataset again from its source",
                digest=entry.digest,
            )
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)


def _write_bytes(data: bytes, target: Path) -> None:
    """Write ``data`` to a temporary file beside ``target`` and rename it over ``target``."""
    temporary = f"{target.parent}/.{target.name}{temporary_name()}"
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(descriptor, view) :]
        finally:
            os.close(descriptor)
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _hash(path: Path, size: int) -> str:
    hasher = new_hasher(size)
    with path.open("rb", buffering=0) as stream:
        buffer = bytearray(CHUNK_SIZE)
        view = memoryview(buffer)
        while count := stream.readinto(buffer):
            hasher.update(view[:count])
    return str(hasher.hexdigest())


def verified_path(store: ArtifactStore, entry: ManifestEntry, scratch: Path) -> Path:
    """A local path holding the entry's verified bytes (the object itself when local)."""
    source = store.local_path(entry.digest)
    if source is None:
        target = scratch / entry.digest
        store.copy_to(entry.digest, target)
        return target
    if not source.is_file():
        store.size(entry.digest)  # raises NotFound naming the object
    if _hash(source, entry.size) != entry.digest:
        raise IntegrityError(
            f"object {entry.digest} ({entry.path}) in {store.uri} is corrupt; "
            "add the dataset again from its source",
            digest=entry.digest,
        )
    return source


def load_frame(
    store: ArtifactStore, entries: Sequence[ManifestEntry], label: str, scratch: Path
) -> pd.DataFrame:
    """Read a tabular version: one file, or a directory of parts in one format."""
    import pandas as pd

    tabular = [(e, tabular_format(e.path)) for e in entries]
    parts = [(e, fmt) for e, fmt in tabular if fmt is not None]
    if not parts:
        raise InvalidArgument(
            f"{label} holds no tabular file (.parquet, .csv, .tsv, .jsonl); "
            f"restore its files with `keel data get {label} -o DIR` instead"
        )
    formats = sorted({fmt for _, fmt in parts})
    if len(formats) > 1:
        raise InvalidArgument(
            f"{label} mixes tabular formats ({', '.join(formats)}); load its files "
            "one by one after `keel data get`"
        )
    frames = []
    for entry, fmt in parts:
        path = verified_path(store, entry, scratch)
        try:
            frames.append(_read(path, fmt or ""))
        except (ValueError, OSError) as error:
            raise InvalidArgument(
                f"cannot read {entry.path} of {label} as {fmt}: {error}"
            ) from None
    if len(frames) == 1:
        return frames[0]
    return pd.concat(frames, ignore_index=True)


def _read(path: Path, fmt: str) -> pd.DataFrame:
    import pandas as pd

    if fmt == "parquet":
        import pyarrow.parquet as pq

        frame: pd.DataFrame = pq.read_table(path).to_pandas()
        return frame
    if fmt in ("csv", "tsv"):
        return pd.read_csv(path, sep="\t" if fmt == "tsv" else ",")
    return pd.read_json(path, lines=True)
