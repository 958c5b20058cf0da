"""Reading a model package back: its descriptor, its file, the checks between them.

One implementation for every way a package's bytes are found: through the tracking
service (the full metadata store) or through a read-only look-up (:class:`PackageFiles`
over ``SqliteReader``, ADR 0020). Whatever the source, the descriptor must describe the
package it was read from, name exactly one file under the package's prefix, and that
file must be the artifact the run recorded, verified against its digest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from keel.core._artifact_names import validate_artifact_name
from keel.core._models import DESCRIPTOR, ModelInfo, ModelURI
from keel.errors import IntegrityError, InvalidArgument, NotFound
from keel.models._check import ExtraColumns
from keel.models._flavors import load_bytes
from keel.models._loaded import LoadedModel

__all__ = ["PackageFiles", "load_package", "read_info", "runs_uri"]


@dataclass(frozen=True)
class PackageFiles:
    """Where a package's bytes come from.

    ``check_run(run_id)`` raises NotFound unless the run exists and is not deleted;
    ``digest(run_id, name)`` is the digest the run recorded for artifact ``name``, or
    None; ``read(digest)`` returns the object, verified against its digest.
    """

    check_run: Callable[[str], object]
    digest: Callable[[str, str], str | None]
    read: Callable[[str], bytes]


def runs_uri(uri: str | ModelURI) -> ModelURI:
    parsed = uri if isinstance(uri, ModelURI) else ModelURI.parse(uri)
    if parsed.scheme != "runs":
        raise InvalidArgument(
            f"{parsed} is a registry URI; resolve it to runs:/<run_id>/<name> through the "
            "registry first (keel.load_model does this)"
        )
    return parsed


def read_info(files: PackageFiles, uri: str | ModelURI) -> ModelInfo:
    """The package descriptor at ``runs:/<run_id>/<name>``."""
    parsed = runs_uri(uri)
    assert parsed.run_id is not None
    assert parsed.path is not None
    prefix = validate_artifact_name(parsed.path)
    files.check_run(parsed.run_id)
    digest = files.digest(parsed.run_id, validate_artifact_name(f"{prefix}/{DESCRIPTOR}"))
    if digest is None:
        raise NotFound(
            f"run {parsed.run_id} has no model package {prefix!r}; list its artifacts "
            f"with `keel runs show {parsed.run_id}`"
        ) from None
    try:
        data = orjson.loads(files.read(digest))
    except orjson.JSONDecodeError as error:
        raise IntegrityError(
            f"the descriptor of {parsed} is not valid JSON ({error}); log the model again"
        ) from None
    if not isinstance(data, dict):
        raise IntegrityError(f"the descriptor of {parsed} is not a JSON object")
    info = ModelInfo.from_dict(data)
    if info.run_id != parsed.run_id or info.artifact_path != prefix:
        raise IntegrityError(
            f"the descriptor of {parsed} describes runs:/{info.run_id}/{info.artifact_path}; "
            "it was copied or altered. Log the model again"
        )
    return info


def load_package(
    files: PackageFiles,
    info: ModelInfo,
    *,
    allow_pickle: bool = False,
    extra_columns: ExtraColumns = "error",
) -> LoadedModel:
    """The model ``info`` describes, checked against the descriptor's digests."""
    if info.format == "pickle" and not allow_pickle:
        raise InvalidArgument(
            f"{info.uri} is stored as a pickle (flavor {info.flavor!r}), and loading a "
            "pickle runs code from the package. If you trust where it came from, pass "
            "allow_pickle=True"
        )
    if len(info.files) != 1:
        raise IntegrityError(f"the descriptor of {info.uri} names {len(info.files)} files")
    ((file_name, digest),) = info.files.items()
    if not file_name.startswith(f"{info.artifact_path}/"):
        raise IntegrityError(f"the descriptor of {info.uri} names a foreign file")
    recorded = files.digest(info.run_id, file_name)
    if recorded is None:
        raise NotFound(
            f"run {info.run_id!r} has no artifact {file_name!r}; list them with "
            f"`keel runs show {info.run_id}`"
        )
    if recorded != digest:
        raise IntegrityError(
            f"{file_name} in run {info.run_id} is not the file the package was logged "
            "with (digests differ); it was not loaded. Log the model again"
        )
    raw = load_bytes(
        info.format,
        files.read(digest),
        model_class=info.model_class,
        trusted=info.trusted_types,
        trust_complete=info.trusted_types_complete,
    )
    return LoadedModel(info, raw, extra_columns=extra_columns)
