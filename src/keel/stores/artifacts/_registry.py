"""Which ``ArtifactStore`` a URI opens: a small scheme registry with plugin entry points.

Resolution order for ``scheme://...``: schemes registered in-process (``file`` is built
in), then the ``keel.artifact_stores`` entry point of that name (loaded on first use; a
plugin that fails to load is logged and skipped), then any fsspec protocol. A bare
absolute path means a local store.

``sync`` (``KEEL_SYNC``) applies to the built-in local store; other back-ends decide
their own durability (an object store's upload is durable once it completes).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from urllib.parse import unquote, urlsplit

from keel.errors import InvalidArgument
from keel.stores.artifacts._base import ArtifactStore, SyncMode
from keel.stores.artifacts._fsspec import FsspecArtifactStore
from keel.stores.artifacts._local import LocalArtifactStore

__all__ = ["ENTRY_POINT_GROUP", "StoreFactory", "open_artifact_store", "register_scheme"]

ENTRY_POINT_GROUP = "keel.artifact_stores"

StoreFactory = Callable[[str], ArtifactStore]
"""Builds a store from the full URI it was asked for."""

logger = logging.getLogger(__name__)

_SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*")
_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_WINDOWS_DRIVE_PATH_RE = re.compile(r"^/[A-Za-z]:[/\\]")

_lock = threading.RLock()  # a plugin may call register_scheme() while loading
_factories: dict[str, StoreFactory] = {}
_plugins_tried: set[str] = set()


def register_scheme(scheme: str, factory: StoreFactory) -> None:
    """Make ``scheme://...`` URIs open stores built by ``factory`` (the latest wins)."""
    if not isinstance(scheme, str) or not _SCHEME_RE.fullmatch(scheme):
        raise InvalidArgument(
            f"invalid artifact store scheme {scheme!r}: use a lowercase URI scheme such as "
            "'s3' or 'my-store', without '://'"
        )
    if not callable(factory):
        raise InvalidArgument(
            f"factory for scheme {scheme!r} is not callable; pass a function taking the URI"
        )
    with _lock:
        _factories[scheme] = factory


def open_artifact_store(uri: str, *, sync: SyncMode = "normal") -> ArtifactStore:
    """Open the artifact store at ``uri`` (``file:///abs``, ``/abs``, ``s3://bucket/p``...)."""
    if not isinstance(uri, str) or not uri.strip():
        raise InvalidArgument(
            f"artifact store location must be a non-empty string, got {uri!r}; "
            "pass a URI such as 'file:///data/keel' or 's3://bucket/keel'"
        )
    match = _URI_RE.match(uri)
    if match is None:
        if not os.path.isabs(uri):
            raise InvalidArgument(
                f"artifact store location {uri!r} is neither a URI nor an absolute path; "
                "pass an absolute path or a URI such as 'file:///data/keel'"
            )
        return LocalArtifactStore(uri, sync=sync)
    factory = _factory(match.group(1).lower())
    if factory is _open_file_uri:
        return _open_file_uri(uri, sync=sync)
    return factory(uri)


def _factory(scheme: str) -> StoreFactory:
    with _lock:
        factory = _factories.get(scheme)
        if factory is None and scheme not in _plugins_tried:
            _plugins_tried.add(scheme)
            factory = _load_plugin(scheme)
            if factory is not None:
                _factories[scheme] = factory
    return factory or FsspecArtifactStore


def _load_plugin(scheme: str) -> StoreFactory | None:
    """The factory a ``keel.artifact_stores`` entry point named ``scheme`` provides, if any."""
    from importlib.metadata import entry_points

    for entry_point in entry_points(group=ENTRY_POINT_GROUP, name=scheme):
        try:
            factory = entry_point.load()
        except Exception:
            logger.warning(
                "artifact store plugin %r (%s) failed to load and was skipped",
                scheme,
                entry_point.value,
                exc_info=True,
            )
            continue
        if not callable(factory):
            logger.warning(
                "artifact store plugin %r (%s) is not callable and was skipped",
                scheme,
                entry_point.value,
            )
            continue
        return factory  # type: ignore[no-any-return]
    return None


def _open_file_uri(uri: str, *, sync: SyncMode = "normal") -> ArtifactStore:
    """``file:///abs/path`` (or ``file://localhost/abs/path``) as a local store."""
    parts = urlsplit(uri)
    if parts.netloc not in ("", "localhost") or parts.query or parts.fragment:
        raise InvalidArgument(
            f"artifact store URI {uri!r} is not a local file URI; use file:///absolute/path"
        )
    path = unquote(parts.path)
    if _WINDOWS_DRIVE_PATH_RE.match(path):
        path = path[1:]  # file:///C:/x -> C:/x
    if not path or not os.path.isabs(path):
        raise InvalidArgument(
            f"artifact store URI {uri!r} has no absolute path; use file:///absolute/path"
        )
    return LocalArtifactStore(path, uri=uri, sync=sync)


_factories["file"] = _open_file_uri
