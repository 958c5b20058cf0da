"""The model service: log a model package to a run, describe it, load it back.

A package is a set of run artifacts under a prefix (``model`` by default): the model
file and the descriptor ``<prefix>/keel-model.json`` (:meth:`ModelInfo.to_dict`). Every
byte read back is verified against its digest by the artifact store, and the model
file must be the one the descriptor names.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import orjson

from keel.core._artifact_names import validate_artifact_name
from keel.core._models import DESCRIPTOR, ModelInfo, ModelSignature, ModelURI
from keel.errors import InvalidArgument, NotFound
from keel.models._check import ExtraColumns, check_input
from keel.models._flavors import check_flavor, detect_flavor, save_model
from keel.models._loaded import LoadedModel
from keel.models._package import PackageFiles, load_package, read_info
from keel.models._requirements import distribution_versions, model_modules, pinned_requirements

if TYPE_CHECKING:
    from keel.tracking import TrackingService

__all__ = ["ModelService"]

CLASSES_KEY = "keel.classes"


class ModelService:
    """Log, describe and load model packages stored in runs' artifacts."""

    def __init__(self, tracking: TrackingService) -> None:
        self._tracking = tracking

        def digest(run_id: str, name: str) -> str | None:
            try:
                return tracking.store.get_artifact(run_id, name).digest
            except NotFound:
                return None

        self._files = PackageFiles(tracking.get_run, digest, tracking.artifacts.get_bytes)

    # logging -------------------------------------------------------------------------

    def log_model(
        self,
        run_id: str,
        model: Any,
        name: str = "model",
        *,
        input_example: Any = None,
        signature: ModelSignature | None = None,
        flavor: str | None = None,
        allow_pickle: bool = False,
        trusted_types: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> ModelInfo:
        """Store ``model`` as the package ``runs:/<run_id>/<name>`` and return its info."""
        prefix = validate_artifact_name(name)
        if isinstance(trusted_types, str):
            raise InvalidArgument(
                "trusted_types must be a list of type names, e.g. ['mypkg.MyTransformer']"
            )
        if signature is not None and not isinstance(signature, ModelSignature):
            raise InvalidArgument(
                f"signature must be a ModelSignature, got {type(signature).__name__}"
            )
        user_metadata = _json_metadata(metadata)
        self._tracking.get_run(run_id)
        self._refuse_existing(run_id, prefix)
        if flavor is None:
            flavor = detect_flavor(model)
        else:
            check_flavor(model, flavor)

        signature = self._signature(model, input_example, signature)
        saved = save_model(
            model, flavor, allow_pickle=allow_pickle, trusted_types=tuple(trusted_types)
        )
        modules = set(saved.libraries) | model_modules(model) | {"keel"}
        if signature is not None and signature.input_kind == "dataframe":
            modules.add("pandas")
        versions = distribution_versions(modules)
        classes = getattr(model, "classes_", None)
        if signature is None and classes is not None:
            user_metadata.setdefault(CLASSES_KEY, [_plain(c) for c in classes])

        file_name = f"{prefix}/{saved.filename}"
        artifact = self._tracking.log_bytes(run_id, saved.data, file_name)
        info = ModelInfo(
            run_id=run_id,
            artifact_path=prefix,
            flavor=flavor,
            format=saved.format,
            signature=signature,
            requirements=pinned_requirements(versions),
            files={file_name: artifact.digest},
            metadata=user_metadata,
            trusted_types=saved.trusted_types,
            trusted_types_complete=saved.trust_complete,
            model_class=saved.model_class,
            python_version=platform.python_version(),
            library_versions=versions,
            created_at=time.time(),
        )
        descriptor = orjson.dumps(info.to_dict(), option=orjson.OPT_INDENT_2)
        self._tracking.log_bytes(run_id, descriptor, f"{prefix}/{DESCRIPTOR}")
        return info

    def _refuse_existing(self, run_id: str, prefix: str) -> None:
        try:
            self._tracking.store.get_artifact(run_id, f"{prefix}/{DESCRIPTOR}")
        except NotFound:
            return
        raise InvalidArgument(
            f"run {run_id} already has a model package {prefix!r}; log under another name "
            "(name='model-v2') or in a new run"
        )

    def _signature(
        self, model: Any, example: Any, given: ModelSignature | None
    ) -> ModelSignature | None:
        if example is None:
            return given
        from keel.models._signature import infer_signature, to_frame

        frame, kind = to_frame(example, "input_example")
        if given is not None:
            check_input(frame, given, extra_columns="error", uri="the given signature")
            return given
        try:
            output = model.predict(frame.to_numpy() if kind == "ndarray" else frame)
        except Exception as error:
            raise InvalidArgument(
                f"predict() failed on input_example ({type(error).__name__}: {error}); "
                "pass rows shaped like the training data"
            ) from None
        return infer_signature(model, frame if kind == "dataframe" else example, output)

    # reading -------------------------------------------------------------------------

    def get_info(self, uri: str | ModelURI) -> ModelInfo:
        """The package descriptor at ``runs:/<run_id>/<name>``."""
        return read_info(self._files, uri)

    def load_model(
        self,
        uri: str | ModelURI,
        *,
        allow_pickle: bool = False,
        extra_columns: ExtraColumns = "error",
    ) -> LoadedModel:
        """The model at ``runs:/<run_id>/<name>``, checked against its descriptor's digests."""
        return load_package(
            self._files,
            self.get_info(uri),
            allow_pickle=allow_pickle,
            extra_columns=extra_columns,
        )


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def _json_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise InvalidArgument(
            f"metadata must be a mapping, got {type(metadata).__name__}; pass a dict"
        )
    clean = dict(metadata)
    try:
        orjson.dumps(clean, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as error:
        raise InvalidArgument(
            f"metadata must be JSON-serialisable ({error}); pass strings, numbers, lists and dicts"
        ) from None
    return {str(k): v for k, v in clean.items()}
