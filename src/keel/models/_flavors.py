"""Flavors: how each kind of model is written to bytes and read back.

=========  ==================  ===================================================
flavor     format              file
=========  ==================  ===================================================
sklearn    ``skops``           ``model.skops``; types outside the default skops
                               list must be on the allow-list below or in
                               ``trusted_types``, recorded and passed at load
sklearn    ``pickle``          ``model.pkl`` (only with ``allow_pickle=True``, when
                               skops cannot represent the model safely)
xgboost    ``xgboost-json``    ``model.json`` via ``save_model``/``load_model``
lightgbm   ``lightgbm-text``   ``model.txt`` via ``model_to_string``/``Booster``
pyfunc     ``pickle``          ``model.pkl`` (cloudpickle; opt-in at log and load)
=========  ==================  ===================================================

Heavy libraries are imported here only when a model of that flavor is saved or loaded.
The model class recorded for native formats is looked up in a fixed table, never
imported by name from the descriptor.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keel.errors import IntegrityError, InvalidArgument
from keel.models._skops import explicit_trust, skops_default_estimator_types

__all__ = ["FLAVORS", "SavedModel", "detect_flavor", "load_bytes", "save_model"]

FLAVORS = ("sklearn", "xgboost", "lightgbm", "pyfunc")
SAFE_PREFIXES = ("sklearn.", "numpy.", "scipy.")
SAFE_BUILTINS = frozenset(
    {
        "builtins.slice",
        "builtins.range",
        "builtins.frozenset",
        "builtins.bytearray",
        "builtins.complex",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.Counter",
        "datetime.datetime",
        "datetime.date",
        "datetime.timedelta",
    }
)
_XGB_CLASSES = ("XGBClassifier", "XGBRegressor", "XGBRanker", "XGBRFClassifier", "XGBRFRegressor")
_LGB_CLASSES = ("LGBMClassifier", "LGBMRegressor", "LGBMRanker", "Booster")
_PICKLE_FIX = (
    "pass allow_pickle=True if you trust this model and the code it needs "
    "(a pickle runs code when it is loaded)"
)


@dataclass
class SavedModel:
    """A model as bytes, with what is needed to read it back."""

    format: str
    filename: str
    data: bytes
    trusted_types: tuple[str, ...] = ()
    trust_complete: bool = False  # trusted_types lists every type (skops: no default list)
    libraries: tuple[str, ...] = ()  # top-level modules whose versions matter
    model_class: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _class_path(model: Any) -> str:
    kind = type(model)
    return f"{kind.__module__}.{kind.__qualname__}"


def detect_flavor(model: Any) -> str:
    """The flavor of ``model``; raise ``InvalidArgument`` if it cannot predict."""
    root = type(model).__module__.partition(".")[0]
    if root == "xgboost":
        return "xgboost"
    if root == "lightgbm":
        return "lightgbm"
    base = sys.modules.get("sklearn.base")
    if base is not None and isinstance(model, base.BaseEstimator):
        return "sklearn"
    if callable(getattr(model, "predict", None)):
        return "pyfunc"
    raise InvalidArgument(
        f"cannot log a {_class_path(model)}: it has no predict() method; log a fitted "
        "estimator, or wrap the model in an object with predict(X)"
    )


def check_flavor(model: Any, flavor: str) -> None:
    """Refuse an unknown flavor or one that does not fit ``model``."""
    if flavor not in FLAVORS:
        raise InvalidArgument(
            f"unknown model flavor {flavor!r}; use one of {', '.join(FLAVORS)}, "
            "or leave flavor=None to detect it"
        )
    if not callable(getattr(model, "predict", None)):
        raise InvalidArgument(
            f"cannot log a {_class_path(model)}: it has no predict() method; log a fitted "
            "estimator, or wrap the model in an object with predict(X)"
        )
    detected = detect_flavor(model)
    if flavor != "pyfunc" and detected != flavor:
        raise InvalidArgument(
            f"flavor {flavor!r} does not fit a {_class_path(model)} (it looks like "
            f"{detected!r}); pass flavor={detected!r} or leave flavor=None"
        )


def save_model(
    model: Any, flavor: str, *, allow_pickle: bool, trusted_types: Sequence[str]
) -> SavedModel:
    if flavor == "sklearn":
        return _save_sklearn(model, allow_pickle, trusted_types)
    if flavor == "xgboost":
        return _save_xgboost(model)
    if flavor == "lightgbm":
        return _save_lightgbm(model)
    if not allow_pickle:
        raise InvalidArgument(
            f"a {_class_path(model)} can only be stored as a pickle (flavor 'pyfunc'); "
            + _PICKLE_FIX
        )
    return _save_pickle(model)


def _trusted(name: str, user: Sequence[str]) -> bool:
    return name.startswith(SAFE_PREFIXES) or name in SAFE_BUILTINS or name in user


def _save_sklearn(model: Any, allow_pickle: bool, user: Sequence[str]) -> SavedModel:
    with explicit_trust() as sio:
        try:
            data = sio.dumps(model)
        except Exception as error:
            data, failure = b"", f"{type(error).__name__}: {error}"
        else:
            failure = ""
            # Every type the file holds: skops' default list is empty inside explicit_trust.
            untrusted = sio.get_untrusted_types(data=data)
    if failure:
        if allow_pickle:
            return _save_pickle(model, flavor_libraries=("sklearn", "numpy"))
        raise InvalidArgument(
            f"skops cannot store this {_class_path(model)} ({failure}); " + _PICKLE_FIX
        )
    refused = [t for t in untrusted if not _trusted(t, user)]
    if refused:
        if allow_pickle:
            return _save_pickle(model, flavor_libraries=("sklearn", "numpy"))
        listed = ", ".join(refused)
        raise InvalidArgument(
            f"the model contains types that are not trusted for safe loading: {listed}. "
            f"If you trust them, pass trusted_types=[{', '.join(repr(t) for t in refused)}]; "
            f"otherwise {_PICKLE_FIX}",
            types=refused,
        )
    return SavedModel(
        "skops",
        "model.skops",
        data,
        trusted_types=tuple(sorted(untrusted)),
        trust_complete=True,
        libraries=("sklearn", "skops", "numpy", "scipy"),
        model_class=_class_path(model),
    )


def _save_pickle(model: Any, flavor_libraries: tuple[str, ...] = ()) -> SavedModel:
    import cloudpickle

    try:
        data = cloudpickle.dumps(model)
    except Exception as error:
        raise InvalidArgument(
            f"cannot pickle this {_class_path(model)} ({type(error).__name__}: {error}); "
            "make it picklable (no open files, locks or lambdas capturing them)"
        ) from None
    return SavedModel(
        "pickle",
        "model.pkl",
        data,
        libraries=("cloudpickle", *flavor_libraries),
        model_class=_class_path(model),
    )


def _save_xgboost(model: Any) -> SavedModel:
    name = type(model).__name__
    if name not in (*_XGB_CLASSES, "Booster"):
        raise InvalidArgument(
            f"cannot store a {_class_path(model)} natively; log an XGBClassifier, "
            "XGBRegressor, XGBRanker or Booster"
        )
    with tempfile.TemporaryDirectory(prefix="keel-xgb-") as tmp:
        path = Path(tmp) / "model.json"
        try:
            model.save_model(str(path))
        except Exception as error:
            raise InvalidArgument(
                f"cannot save this {name} ({error}); fit it before logging it"
            ) from None
        data = path.read_bytes()
    libraries = ("xgboost", "numpy") if name == "Booster" else ("xgboost", "sklearn", "numpy")
    return SavedModel("xgboost-json", "model.json", data, libraries=libraries, model_class=name)


def _save_lightgbm(model: Any) -> SavedModel:
    name = type(model).__name__
    if name not in _LGB_CLASSES:
        raise InvalidArgument(
            f"cannot store a {_class_path(model)} natively; log an LGBMClassifier, "
            "LGBMRegressor, LGBMRanker or Booster"
        )
    booster = model if name == "Booster" else getattr(model, "booster_", None)
    if booster is None:
        raise InvalidArgument(f"this {name} is not fitted; fit it before logging it")
    data = booster.model_to_string().encode("utf-8")
    libraries = ("lightgbm", "numpy") if name == "Booster" else ("lightgbm", "sklearn", "numpy")
    return SavedModel("lightgbm-text", "model.txt", data, libraries=libraries, model_class=name)


def load_bytes(
    format: str,
    data: bytes,
    *,
    model_class: str,
    trusted: Sequence[str],
    trust_complete: bool = False,
) -> Any:
    """The model stored as ``data`` in ``format`` (the caller has checked pickle opt-in).

    ``trust_complete`` says ``trusted`` lists every type of a skops file; older packages
    recorded only the types beyond skops' default list, which is then added back.
    """
    if format == "skops":
        listed = list(trusted)
        if not trust_complete:
            listed += skops_default_estimator_types()
        with explicit_trust() as sio:
            try:
                return sio.loads(data, trusted=listed)
            except sio.exceptions.UntrustedTypesFoundException as error:
                raise IntegrityError(
                    f"the model file holds types its descriptor does not trust ({error}); "
                    "it was not loaded. Log the model again"
                ) from None
    if format == "pickle":
        import pickle

        return pickle.loads(data)  # noqa: S301 - the caller passed allow_pickle=True
    if format == "xgboost-json":
        return _load_xgboost(data, model_class)
    if format == "lightgbm-text":
        import lightgbm

        return lightgbm.Booster(model_str=data.decode("utf-8"))
    raise InvalidArgument(
        f"unknown model format {format!r}; load it with the Keel version that logged it"
    )


def _load_xgboost(data: bytes, model_class: str) -> Any:
    import xgboost

    if model_class not in (*_XGB_CLASSES, "Booster"):
        raise IntegrityError(f"unexpected XGBoost model class {model_class!r} in the descriptor")
    model = getattr(xgboost, model_class)()
    with tempfile.TemporaryDirectory(prefix="keel-xgb-") as tmp:
        path = Path(tmp) / "model.json"
        path.write_bytes(data)
        model.load_model(str(path))
    return model
