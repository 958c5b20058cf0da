"""Scanning a file or directory, and the canonical manifest a dataset version hashes.

A version is the BLAKE3 digest of its manifest: a JSON document listing every file as
``[relative POSIX path, size, BLAKE3 digest]`` sorted by path, plus the version's kind
(a single file or a directory). The manifest is stored in the artifact store like any
object, so a version's content can be checked end to end from its digest alone.

Symbolic links: a link to a regular file inside the directory is followed and stored
as that file's content at the link's path; a link that leaves the directory, dangles,
loops, or points at a directory is refused with a message naming it (storing links as
links would make a version depend on files outside it).
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Iterable, Sequence
from operator import itemgetter
from pathlib import Path, PurePosixPath
from stat import S_ISDIR, S_ISLNK, S_ISREG
from typing import NamedTuple

import orjson

from keel.core._data import ManifestEntry
from keel.errors import IntegrityError, InvalidArgument, NotFound

__all__ = [
    "ScannedFile",
    "decode_manifest",
    "encode_manifest",
    "manifest_bytes",
    "safe_relative_path",
    "scan",
]

MANIFEST_FORMAT = "keel-manifest/1"


class ScannedFile(NamedTuple):
    """A file found by ``scan``: where it is, what it is called in the dataset, its stat.

    A named tuple rather than a dataclass: a scan builds one per file, and tuples are
    the cheapest object Python builds (a 20,000-file re-add is mostly this loop).
    """

    relpath: str
    path: str
    size: int
    mtime_ns: int
    ctime_ns: int
    inode: int
    device: int


def scan(path: Path, ignore: Sequence[Path] = ()) -> tuple[str, list[ScannedFile]]:
    """The kind (``file`` or ``directory``) and files of ``path``, sorted by relative path."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise InvalidArgument(
                f"{path} is a symbolic link to a missing file ({os.readlink(path)}); "
                "fix or remove the link"
            ) from None
        raise NotFound(f"no file or directory {path}; check the path") from None
    except OSError as error:
        raise _link_error(path, error) from None
    if stat.S_ISREG(info.st_mode):
        return "file", [_scanned(path.name, os.fspath(path.absolute()), info)]
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidArgument(
            f"{path} is neither a regular file nor a directory; add a file or a directory"
        )
    root = path.resolve()
    skip = {p.resolve() for p in ignore}
    files: list[ScannedFile] = []
    _walk(root, root, "", skip, files)
    if not files:
        raise InvalidArgument(
            f"{path} is an empty directory (or holds only empty directories); "
            "there is nothing to version, so add a directory with at least one file"
        )
    files.sort(key=itemgetter(0))  # by relative path (unique); faster than whole tuples
    return "directory", files


def _walk(
    root: Path, directory: Path, prefix: str, skip: set[Path], out: list[ScannedFile]
) -> None:
    base = os.path.join(os.fspath(directory), "")
    descriptor = None
    try:
        if _STAT_DIR_FD:
            descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            names = os.listdir(descriptor)
        else:
            names = os.listdir(directory)
    except PermissionError as error:
        if descriptor is not None:
            os.close(descriptor)
        raise InvalidArgument(
            f"cannot list {directory}: {error.strerror}; give yourself read access "
            "or move it out of the dataset"
        ) from None
    try:
        # The hot loop of a re-add: one lstat per entry, relative to the open directory
        # (no path walk from /), no Path or DirEntry objects, one tuple each.
        if descriptor is not None:
            lstat = functools.partial(os.stat, dir_fd=descriptor, follow_symlinks=False)
        else:
            lstat = functools.partial(_lstat_in, base)
        append = out.append
        new = tuple.__new__
        for name in names:
            relpath = prefix + (name if name.isascii() else _name(name, directory))
            info = lstat(name)
            mode = info.st_mode
            if S_ISREG(mode):
                append(
                    new(
                        ScannedFile,
                        (
                            relpath,
                            base + name,
                            info.st_size,
                            info.st_mtime_ns,
                            info.st_ctime_ns,
                            info.st_ino,
                            info.st_dev,
                        ),
                    )
                )
            elif S_ISLNK(mode):
                append(_follow_link(root, Path(base + name), relpath))
            elif S_ISDIR(mode):
                full = Path(base + name)
                if full not in skip:
                    _walk(root, full, relpath + "/", skip, out)
            else:
                raise InvalidArgument(
                    f"{base + name} is not a regular file (a socket, pipe or device); "
                    "remove it from the directory before adding it"
                )
    finally:
        if descriptor is not None:
            os.close(descriptor)


_STAT_DIR_FD = os.stat in os.supports_dir_fd and hasattr(os, "O_DIRECTORY")


def _lstat_in(base: str, name: str) -> os.stat_result:
    return os.lstat(base + name)


def _name(name: str, directory: Path) -> str:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidArgument(
            f"a file name in {directory} is not valid UTF-8 "
            f"({name.encode('utf-8', 'surrogateescape')!r}); "
            "rename it so the dataset can be restored on any system"
        ) from None
    return name


def _follow_link(root: Path, link: Path, relpath: str) -> ScannedFile:
    try:
        info = os.stat(link)
        target = link.resolve(strict=True)
    except FileNotFoundError:
        raise InvalidArgument(
            f"{link} is a symbolic link to a missing file ({os.readlink(link)}); "
            "fix or remove the link"
        ) from None
    except (OSError, RuntimeError) as error:
        raise _link_error(link, error) from None
    if not target.is_relative_to(root):
        raise InvalidArgument(
            f"{link} is a symbolic link to {target}, outside the directory being added; "
            "copy the file into the directory, or add it as a dataset of its own"
        )
    if stat.S_ISDIR(info.st_mode):
        if root.is_relative_to(target) or link.parent.resolve().is_relative_to(target):
            raise InvalidArgument(
                f"{link} is a symbolic link loop: it points at {target}, which contains it; "
                "remove the link"
            )
        raise InvalidArgument(
            f"{link} is a symbolic link to a directory; Keel does not follow directory "
            "links, so replace it with the directory itself or remove it"
        )
    if not stat.S_ISREG(info.st_mode):
        raise InvalidArgument(f"{link} links to something that is not a regular file")
    return _scanned(relpath, os.fspath(link), info)


def _link_error(path: Path, error: BaseException) -> InvalidArgument:
    if isinstance(error, RuntimeError) or getattr(error, "errno", None) == errno.ELOOP:
        return InvalidArgument(
            f"{path} is a symbolic link loop (it resolves to itself); remove or fix the link"
        )
    return InvalidArgument(f"cannot read {path}: {error}; check the path and its permissions")


def _scanned(relpath: str, path: str, info: os.stat_result) -> ScannedFile:
    return ScannedFile(
        relpath, path, info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev
    )


def encode_manifest(kind: str, entries: Iterable[ManifestEntry]) -> bytes:
    """The canonical manifest bytes: same files, same bytes, same digest."""
    files = [(e.path, e.size, e.digest) for e in sorted(entries, key=lambda e: e.path)]
    return manifest_bytes(kind, files)


def manifest_bytes(kind: str, files: Sequence[tuple[str, int, str]]) -> bytes:
    """``encode_manifest`` for rows (path, size, digest) already sorted by path."""
    return orjson.dumps({"format": MANIFEST_FORMAT, "kind": kind, "files": files})


def decode_manifest(data: bytes, digest: str) -> tuple[str, list[ManifestEntry]]:
    """The kind and entries of a stored manifest (every path checked before use)."""
    try:
        body = orjson.loads(data)
        if body.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"unknown format {body.get('format')!r}")
        entries = [
            ManifestEntry(safe_relative_path(path), int(size), str(digest_))
            for path, size, digest_ in body["files"]
        ]
        return str(body["kind"]), entries
    except (ValueError, KeyError, TypeError) as error:
        raise IntegrityError(
            f"dataset manifest {digest} is not a Keel manifest ({error}); "
            "the metadata store points at the wrong object",
            digest=digest,
        ) from None


def safe_relative_path(path: str) -> str:
    """``path`` if it is a plain relative POSIX path (no ``..``, no root), else an error."""
    parts = PurePosixPath(path).parts
    if (
        not path
        or path.startswith("/")
        or "\x00" in path
        or any(p in ("..", ".") for p in parts)
        or "/".join(parts) != path
    ):
        raise IntegrityError(f"refusing unsafe path {path!r} in a dataset manifest")
    return path
