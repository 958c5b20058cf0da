"""A loaded model: predictions that check their input against the signature first."""

from __future__ import annotations

from typing import Any

from keel.core._models import ModelInfo, ModelSignature
from keel.errors import InvalidArgument
from keel.models._check import ExtraColumns, check_input, find_problems
from keel.models._signature import to_frame

__all__ = ["LoadedModel"]


class LoadedModel:
    """A model package read back: ``predict``, ``predict_proba``, ``signature``, ``raw``.

    ``raw`` is the underlying model (the estimator or pipeline; a ``lightgbm.Booster``
    for LightGBM, whose scikit-learn wrapper cannot be rebuilt from the native file).
    ``extra_columns`` says what to do with input columns the signature does not name:
    ``"error"`` (the default) refuses them, ``"drop"`` drops them with a warning.
    """

    def __init__(self, info: ModelInfo, raw: Any, *, extra_columns: ExtraColumns = "error") -> None:
        if extra_columns not in ("error", "drop"):
            raise InvalidArgument(f"extra_columns must be 'error' or 'drop', got {extra_columns!r}")
        self.info = info
        self.raw = raw
        self.extra_columns: ExtraColumns = extra_columns
        self._booster = info.flavor == "lightgbm" and type(raw).__name__ == "Booster"
        self._xgb_booster = info.flavor == "xgboost" and type(raw).__name__ == "Booster"

    def __repr__(self) -> str:
        return f"LoadedModel({self.info.uri!r}, flavor={self.info.flavor!r})"

    @property
    def signature(self) -> ModelSignature | None:
        return self.info.signature

    @property
    def flavor(self) -> str:
        return self.info.flavor

    @property
    def uri(self) -> str:
        return self.info.uri

    def problems(self, X: Any) -> list[str]:
        """What is wrong with ``X`` for this model (empty when it can be predicted on)."""
        if self.signature is None:
            return []
        frame, _ = to_frame(X, "prediction input", [c.name for c in self.signature.inputs])
        return find_problems(frame, self.signature, self.extra_columns)[0]

    def prepare(self, X: Any) -> Any:
        """``X`` checked against the signature and converted to what the model takes."""
        if self.signature is None:
            return X
        return check_input(X, self.signature, extra_columns=self.extra_columns, uri=self.uri)

    def predict(self, X: Any) -> Any:
        """The model's predictions for ``X`` once it passed the signature check."""
        return self.predict_prepared(self.prepare(X))

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities for ``X``, columns in ``signature.classes`` order."""
        if not self.is_classifier:
            raise self._not_classifier()
        return self.predict_proba_prepared(self.prepare(X))

    @property
    def is_classifier(self) -> bool:
        """Whether ``predict_proba`` gives class probabilities for this model."""
        if self._booster:
            return self._classes() is not None
        return callable(getattr(self.raw, "predict_proba", None))

    def predict_prepared(self, data: Any) -> Any:
        """Predictions for input already checked and converted (see :meth:`prepare`)."""
        if self._booster:
            return self._booster_predict(data)
        if self._xgb_booster:
            import xgboost

            return self.raw.predict(xgboost.DMatrix(data))
        return self.raw.predict(data)

    def predict_proba_prepared(self, data: Any) -> Any:
        """Probabilities for input already checked and converted (see :meth:`prepare`)."""
        if self._booster:
            return self._booster_proba(data)
        return self.raw.predict_proba(data)

    # LightGBM boosters ---------------------------------------------------------------

    def _classes(self) -> tuple[Any, ...] | None:
        if self.signature is not None and self.signature.classes is not None:
            return self.signature.classes
        found = self.info.metadata.get("keel.classes")
        return tuple(found) if isinstance(found, list) else None

    def _booster_proba(self, data: Any) -> Any:
        import numpy as np

        raw = np.asarray(self.raw.predict(data))
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def _booster_predict(self, data: Any) -> Any:
        import numpy as np

        classes = self._classes()
        if classes is None:
            return self.raw.predict(data)
        proba = self._booster_proba(data)
        return np.asarray(classes)[proba.argmax(axis=1)]

    def _not_classifier(self) -> InvalidArgument:
        return InvalidArgument(
            f"{self.uri} is not a classifier with predict_proba(); call predict() instead"
        )
