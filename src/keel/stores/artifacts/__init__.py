"""Content-addressed artifact storage: objects named by their BLAKE3 digest.

Open a store with ``open_artifact_store("file:///data/keel")`` (or an absolute path,
``s3://bucket/prefix``, any fsspec protocol, or a scheme added with
``register_scheme`` or the ``keel.artifact_stores`` entry point group), then
``put_bytes``/``put_file`` to store and ``get_bytes``/``open``/``copy_to`` to read;
every read is checked against the digest.
"""

from __future__ import annotations

from keel.stores.artifacts._base import (
    ArtifactRef,
    ArtifactStore,
    SyncMode,
    TemporaryObject,
    validate_digest,
)
from keel.stores.artifacts._bulk import SourceFile, StagedFiles, clone_file
from keel.stores.artifacts._fsspec import FsspecArtifactStore
from keel.stores.artifacts._local import LocalArtifactStore
from keel.stores.artifacts._registry import (
    ENTRY_POINT_GROUP,
    StoreFactory,
    open_artifact_store,
    register_scheme,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "ArtifactRef",
    "ArtifactStore",
    "FsspecArtifactStore",
    "LocalArtifactStore",
    "SourceFile",
    "StagedFiles",
    "StoreFactory",
    "SyncMode",
    "TemporaryObject",
    "clone_file",
    "open_artifact_store",
    "register_scheme",
    "validate_digest",
]
