"""A model version ready to serve: loaded once, with its decoder and lineage summary.

``ServedModel.predict_many`` runs one ``predict`` (and ``predict_proba`` for
classifiers) over the rows of several requests and hands each its slice back, which is
what the micro-batcher needs. ``ModelLoader`` resolves a URI (an alias follows its
current version) and loads the package through the model service, so serving gets the
same digest checks and safe formats as ``keel.load_model``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from keel.core._models import ModelURI
from keel.errors import KeelError
from keel.serving._decode import Decoded, InputDecoder

if TYPE_CHECKING:
    import numpy as np

    from keel.models import LoadedModel, ModelService
    from keel.registry import RegistryService

__all__ = ["ModelLoader", "Prediction", "ServedModel"]


@dataclass(frozen=True)
class Prediction:
    """One request's share of a batch: labels (or values) and class probabilities."""

    labels: np.ndarray[Any, Any]
    proba: np.ndarray[Any, Any] | None


@dataclass
class ServedModel:
    """A loaded model version with what serving needs around it."""

    uri: str  # the URI it was asked for (may name an alias)
    source: str  # runs:/<id>/<path>
    name: str | None
    version: int | None
    loaded: LoadedModel
    decoder: InputDecoder
    summary: dict[str, Any] = field(default_factory=dict)
    array_model: Any = None  # a copy that takes arrays, verified to answer the same
    labels_from_proba: bool = False  # verified: predict == classes[argmax(predict_proba)]

    @property
    def label(self) -> str:
        """The version as metrics and the prediction log name it (``3`` or the run URI)."""
        return str(self.version) if self.version is not None else self.source

    @cached_property
    def log_columns(self) -> list[tuple[str, str]]:
        """(name, logical type) of the input columns, as the prediction log records them."""
        return [(s.name, s.type) for s in self.decoder.specs]

    @cached_property
    def classes(self) -> list[Any] | None:
        sig = self.loaded.signature
        if sig is None or sig.classes is None or not self.loaded.is_classifier:
            return None
        return list(sig.classes)

    def frame_of(self, decoded: Decoded) -> Any:
        """One request's checked rows as a DataFrame (what the prediction log stores)."""
        import pandas as pd

        if decoded.frame is not None:
            return decoded.frame
        return self._matrix_frame(decoded.matrix, pd)

    def _matrix_frame(self, matrix: Any, pd: Any) -> Any:
        frame = pd.DataFrame(matrix, columns=self.decoder.names, copy=False)
        ints = [s.name for s in self.decoder.specs if s.type == "int"]
        if ints:
            frame = frame.astype(dict.fromkeys(ints, "int64"))
        return frame

    def model_input(self, batch: Sequence[Decoded]) -> Any:
        """The rows of ``batch`` stacked into what the model was fitted on."""
        import numpy as np
        import pandas as pd

        signature = self.loaded.signature
        if all(d.matrix is not None for d in batch):
            matrices = [d.matrix for d in batch if d.matrix is not None]
            matrix = matrices[0] if len(matrices) == 1 else np.vstack(matrices)
            if self.array_model is not None or (
                signature is not None and signature.input_kind == "ndarray"
            ):
                return matrix
            return self._matrix_frame(matrix, pd)
        frames = [self.frame_of(d) for d in batch]
        frame = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
        if signature is not None and signature.input_kind == "ndarray":
            return frame.to_numpy()
        return frame

    def predict_many(self, batch: Sequence[Decoded]) -> list[Prediction]:
        """Predictions for every request of ``batch``, in order, from one model call."""
        import numpy as np

        data = self.model_input(batch)
        proba = None
        classes = self.classes
        fast = self.array_model if isinstance(data, np.ndarray) else None
        if classes is not None:
            raw_proba = (
                fast.predict_proba(data)
                if fast is not None
                else self.loaded.predict_proba_prepared(data)
            )
            proba = np.asarray(raw_proba, dtype=np.float64)
        if proba is not None and self.labels_from_proba:
            labels = np.asarray(classes)[proba.argmax(axis=1)]
        elif fast is not None:
            labels = np.asarray(fast.predict(data))
        else:
            labels = np.asarray(self.loaded.predict_prepared(data))
        out: list[Prediction] = []
        start = 0
        for d in batch:
            end = start + d.rows
            out.append(Prediction(labels[start:end], None if proba is None else proba[start:end]))
            start = end
        if start != len(labels):
            raise KeelError(
                f"{self.source} returned {len(labels)} predictions for {start} rows; "
                "its predict() must return one value per input row"
            )
        return out


class ModelLoader:
    """Resolves model URIs to versions and loads them through the model service."""

    def __init__(
        self,
        registry: RegistryService,
        models: ModelService,
        *,
        max_rows: int,
        allow_pickle: bool = False,
    ) -> None:
        self.registry = registry
        self.models = models
        self.max_rows = max_rows
        self.allow_pickle = allow_pickle

    def current(self, uri: str) -> str:
        """The package source ``uri`` names right now (an alias may have moved)."""
        parsed = ModelURI.parse(uri)
        if parsed.scheme == "runs":
            return str(parsed)
        return self.registry.resolve(parsed).source

    def load(self, uri: str) -> ServedModel:
        """Load the version ``uri`` names now, with its decoder and a lineage summary."""
        parsed = ModelURI.parse(uri)
        name: str | None = None
        version: int | None = None
        if parsed.scheme == "models":
            found = self.registry.resolve(parsed)
            source, name, version = found.source, found.name, found.version
        else:
            source = str(parsed)
        loaded = self.models.load_model(source, allow_pickle=self.allow_pickle)
        summary: dict[str, Any] = {"flavor": loaded.flavor, "source": source}
        if name is not None and version is not None:
            try:
                lineage = self.registry.lineage(name, version).to_dict()
                summary.update(
                    run=lineage["run"],
                    metrics=lineage["metrics"],
                    params=lineage["params"],
                    datasets=lineage["datasets"],
                    code=lineage["code"],
                )
            except KeelError as error:  # lineage is informative; serving goes on
                summary["lineage_error"] = error.message
        served = ServedModel(
            uri=uri,
            source=source,
            name=name,
            version=version,
            loaded=loaded,
            decoder=InputDecoder(loaded.signature, max_rows=self.max_rows),
            summary=summary,
        )
        probe_shortcuts(served)
        return served


# Estimators whose predict() is documented as possibly inconsistent with predict_proba().
_PROBA_INCONSISTENT = frozenset({"SVC", "NuSVC"})
_PROBE_ROWS = 16


def probe_shortcuts(model: ServedModel) -> None:
    """Enable the two fast paths only where this model verifiably gives the same answers.

    scikit-learn's feature-name checks cost far more than a linear model's arithmetic on
    a one-row DataFrame, so an all-numeric model fitted on a DataFrame gets a copy
    without its recorded feature names, fed the validated array (the decoder has already
    checked names and order against the signature). The copy is used only if, on probe
    rows, it predicts exactly what the original predicts on the DataFrame; a pipeline
    that selects columns by name fails the probe and keeps DataFrames. Likewise labels
    are taken from ``predict_proba`` only if they match ``predict`` on the probe and the
    estimator is not one documented to differ.
    """
    import copy
    import warnings

    import numpy as np

    if not model.decoder.numeric or model.loaded.flavor != "sklearn":
        return
    rng = np.random.default_rng(0)
    specs = model.decoder.specs
    matrix = rng.normal(size=(_PROBE_ROWS, len(specs))).round(2)
    for j, spec in enumerate(specs):
        if spec.type == "int":
            matrix[:, j] = rng.integers(0, 5, size=_PROBE_ROWS)
    frame = model.frame_of(Decoded(_PROBE_ROWS, matrix=matrix))
    raw = model.loaded.raw
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # any complaint disables the shortcut
            fast = copy.deepcopy(raw)
            _forget_feature_names(fast)
            expected = np.asarray(raw.predict(frame))
            same = np.array_equal(expected, np.asarray(fast.predict(matrix)))
            if model.classes is not None:
                proba = np.asarray(raw.predict_proba(frame))
                same = same and np.array_equal(proba, np.asarray(fast.predict_proba(matrix)))
                final = raw.steps[-1][1] if hasattr(raw, "steps") else raw
                derived = np.asarray(model.classes)[proba.argmax(axis=1)]
                model.labels_from_proba = type(final).__name__ not in _PROBA_INCONSISTENT and (
                    np.array_equal(derived, expected)
                )
    except Exception:  # the probe is only an optimisation; the model keeps DataFrames
        return
    if same:
        model.array_model = fast


def _forget_feature_names(estimator: Any) -> None:
    """Drop ``feature_names_in_`` from an estimator and the steps of a pipeline."""
    if "feature_names_in_" in vars(estimator):
        del estimator.feature_names_in_
    for _, step in getattr(estimator, "steps", ()):
        if step is not None and step != "passthrough":
            _forget_feature_names(step)
