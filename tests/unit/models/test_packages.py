"""Logging and loading model packages: flavors, descriptors, safety, integrity."""

from __future__ import annotations

import operator
import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from keel.core._models import DESCRIPTOR, ColumnSpec, ModelInfo, ModelSignature
from keel.errors import IntegrityError, InvalidArgument, NotFound
from keel.models import LoadedModel, ModelService


class MeanModel:
    """A python-function model: predicts the row mean."""

    def predict(self, X: Any) -> Any:
        return np.asarray(X, dtype=float).mean(axis=1)


class NoPredict:
    def transform(self, X: Any) -> Any:
        return X


def test_sklearn_pipeline_round_trip(
    service: ModelService, run_id: str, pipeline: Any, breast_cancer: tuple[Any, Any]
) -> None:
    X, _ = breast_cancer
    info = service.log_model(run_id, pipeline, input_example=X.iloc[:5])
    assert info.uri == f"runs:/{run_id}/model"
    assert (info.flavor, info.format) == ("sklearn", "skops")
    assert info.model_class == "sklearn.pipeline.Pipeline"
    assert any(r.startswith("scikit-learn==") for r in info.requirements)
    assert any(r.startswith("skops==") for r in info.requirements)
    assert all("==" in r for r in info.requirements)
    assert set(info.files) == {"model/model.skops"}
    assert info.signature is not None
    assert [c.name for c in info.signature.inputs] == list(X.columns)
    assert {c.type for c in info.signature.inputs} == {"float"}
    assert info.signature.classes == (0, 1)
    assert info.signature.outputs == (ColumnSpec("prediction", "int"),)

    assert service.get_info(info.uri) == info
    loaded = service.load_model(info.uri)
    assert isinstance(loaded, LoadedModel)
    np.testing.assert_array_equal(loaded.predict(X.iloc[:50]), pipeline.predict(X.iloc[:50]))
    np.testing.assert_allclose(loaded.predict_proba(X.iloc[:5]), pipeline.predict_proba(X.iloc[:5]))
    assert loaded.raw.__class__.__name__ == "Pipeline"


def test_descriptor_is_the_info_as_json(
    service: ModelService, tracking: Any, run_id: str, pipeline: Any, breast_cancer: tuple[Any, Any]
) -> None:
    X, _ = breast_cancer
    info = service.log_model(run_id, pipeline, "pkg", metadata={"team": "risk"})
    raw = orjson.loads(tracking.read_artifact(run_id, f"pkg/{DESCRIPTOR}"))
    assert raw["flavor"] == "sklearn"
    assert raw["metadata"]["team"] == "risk"
    assert ModelInfo.from_dict(raw) == info
    assert info.signature is None
    loaded = service.load_model(f"runs:/{run_id}/pkg")
    np.testing.assert_array_equal(loaded.predict(X.iloc[:3]), pipeline.predict(X.iloc[:3]))


def test_accepts_records_dict_of_columns_and_arrays(
    service: ModelService, run_id: str, pipeline: Any, breast_cancer: tuple[Any, Any]
) -> None:
    X, _ = breast_cancer
    info = service.log_model(run_id, pipeline, input_example=X.iloc[:5])
    loaded = service.load_model(info.uri)
    expected = pipeline.predict(X.iloc[:4])
    np.testing.assert_array_equal(loaded.predict(X.iloc[:4].to_dict("records")), expected)
    np.testing.assert_array_equal(loaded.predict(X.iloc[:4].to_dict("list")), expected)
    np.testing.assert_array_equal(loaded.predict(X.iloc[:4].to_numpy()), expected)
    one = X.iloc[0].to_dict()
    np.testing.assert_array_equal(loaded.predict(one), expected[:1])


def test_numpy_model_gets_positional_signature(
    service: ModelService, run_id: str, breast_cancer: tuple[Any, Any]
) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = breast_cancer
    arr = X.to_numpy()[:, :4]
    model = LogisticRegression(max_iter=2000).fit(arr, y)
    info = service.log_model(run_id, model, input_example=arr[:5])
    assert info.signature is not None
    assert info.signature.input_kind == "ndarray"
    assert [c.name for c in info.signature.inputs] == ["f0", "f1", "f2", "f3"]
    loaded = service.load_model(info.uri)
    np.testing.assert_array_equal(loaded.predict(arr[:10]), model.predict(arr[:10]))


def test_tampered_object_raises_integrity_error(
    service: ModelService, tracking: Any, run_id: str, pipeline: Any
) -> None:
    info = service.log_model(run_id, pipeline)
    digest = info.files["model/model.skops"]
    path = tracking.artifacts.local_path(digest)
    assert path is not None
    assert path.is_file()
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="corrupt"):
        service.load_model(info.uri)


def test_replaced_model_file_is_refused(
    service: ModelService, tracking: Any, run_id: str, pipeline: Any
) -> None:
    info = service.log_model(run_id, pipeline)
    tracking.log_bytes(run_id, b"not the model", "model/model.skops")
    with pytest.raises(IntegrityError, match="digests differ"):
        service.load_model(info.uri)


def test_pyfunc_needs_pickle_opt_in_at_log_and_load(service: ModelService, run_id: str) -> None:
    with pytest.raises(InvalidArgument, match="allow_pickle=True"):
        service.log_model(run_id, MeanModel())
    info = service.log_model(run_id, MeanModel(), allow_pickle=True, input_example=np.ones((2, 3)))
    assert (info.flavor, info.format) == ("pyfunc", "pickle")
    with pytest.raises(InvalidArgument, match="allow_pickle=True"):
        service.load_model(info.uri)
    loaded = service.load_model(info.uri, allow_pickle=True)
    np.testing.assert_allclose(loaded.predict(np.array([[1.0, 2.0, 3.0]])), [2.0])
    with pytest.raises(InvalidArgument, match="not a classifier"):
        loaded.predict_proba(np.array([[1.0, 2.0, 3.0]]))


def test_untrusted_type_refused_at_save_with_the_fix(service: ModelService, run_id: str) -> None:
    with pytest.raises(InvalidArgument, match=r"_operator\.neg.*trusted_types"):
        service.log_model(run_id, _pipeline_with(operator.neg))
    info = service.log_model(
        run_id, _pipeline_with(operator.neg), "trusted", trusted_types=["_operator.neg"]
    )
    assert "_operator.neg" in info.trusted_types
    loaded = service.load_model(info.uri)
    assert loaded.raw.steps[0][1].func is operator.neg
    pickled = service.log_model(run_id, _pipeline_with(operator.neg), "pickled", allow_pickle=True)
    assert (pickled.flavor, pickled.format) == ("sklearn", "pickle")


def _pipeline_with(func: Any) -> Any:
    from sklearn.linear_model import LinearRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    X = np.arange(20, dtype=float).reshape(10, 2)
    return Pipeline([("f", FunctionTransformer(func)), ("m", LinearRegression())]).fit(X, X[:, 0])


def test_unknown_flavor_and_mismatched_flavor(
    service: ModelService, run_id: str, pipeline: Any
) -> None:
    with pytest.raises(InvalidArgument, match="unknown model flavor 'onnx'"):
        service.log_model(run_id, pipeline, flavor="onnx")
    with pytest.raises(InvalidArgument, match="does not fit"):
        service.log_model(run_id, pipeline, flavor="xgboost")


def test_model_without_predict(service: ModelService, run_id: str) -> None:
    with pytest.raises(InvalidArgument, match="no predict"):
        service.log_model(run_id, NoPredict(), allow_pickle=True)


def test_unknown_run_and_missing_package(service: ModelService, run_id: str) -> None:
    with pytest.raises(NotFound):
        service.log_model("0" * 32, MeanModel(), allow_pickle=True)
    with pytest.raises(NotFound, match="no model package"):
        service.get_info(f"runs:/{run_id}/model")
    with pytest.raises(NotFound):
        service.load_model(f"runs:/{'f' * 32}/model")


@pytest.mark.parametrize("name", ["../model", "a/../../b", "/abs", "model/", "..", "a\\b"])
def test_traversal_names_refused(service: ModelService, run_id: str, name: str) -> None:
    with pytest.raises(InvalidArgument, match="artifact name"):
        service.log_model(run_id, MeanModel(), name, allow_pickle=True)


def test_registry_uri_is_not_resolved_here(service: ModelService) -> None:
    with pytest.raises(InvalidArgument, match="registry"):
        service.load_model("models:/credit@champion")


def test_same_name_twice_in_a_run_is_refused(
    service: ModelService, run_id: str, pipeline: Any
) -> None:
    service.log_model(run_id, pipeline)
    with pytest.raises(InvalidArgument, match="already has a model package"):
        service.log_model(run_id, pipeline)


@pytest.mark.parametrize("example", ["text", 3, np.arange(4), pd.Series([1.0, 2.0]), {1, 2}])
def test_unsupported_input_example(
    service: ModelService, run_id: str, pipeline: Any, example: Any
) -> None:
    with pytest.raises(InvalidArgument, match="input_example"):
        service.log_model(run_id, pipeline, input_example=example)


def test_failing_predict_on_example(service: ModelService, run_id: str, pipeline: Any) -> None:
    with pytest.raises(InvalidArgument, match="predict\\(\\) failed on input_example"):
        service.log_model(run_id, pipeline, input_example=pd.DataFrame({"a": [1.0]}))


def test_given_signature_is_checked_against_example(
    service: ModelService, run_id: str, pipeline: Any, breast_cancer: tuple[Any, Any]
) -> None:
    X, _ = breast_cancer
    sig = ModelSignature(inputs=(ColumnSpec("nope", "float"),))
    with pytest.raises(InvalidArgument, match="missing column"):
        service.log_model(run_id, pipeline, input_example=X.iloc[:2], signature=sig)


def test_metadata_must_be_json(service: ModelService, run_id: str, pipeline: Any) -> None:
    with pytest.raises(InvalidArgument, match="JSON"):
        service.log_model(run_id, pipeline, metadata={"x": object()})


def test_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, keel.models; "
        "heavy = [m for m in ('sklearn', 'skops', 'pandas', 'xgboost', 'lightgbm', "
        "'cloudpickle') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_descriptor_for_another_path_is_refused(
    service: ModelService, tracking: Any, run_id: str, pipeline: Any, tmp_path: Path
) -> None:
    info = service.log_model(run_id, pipeline)
    body = info.to_dict()
    body["artifact_path"] = "elsewhere"
    tracking.log_bytes(run_id, orjson.dumps(body), f"copy/{DESCRIPTOR}")
    with pytest.raises(IntegrityError, match="copied or altered"):
        service.get_info(f"runs:/{run_id}/copy")


def test_loading_a_registered_model_imports_only_what_it_needs(tmp_path: Path) -> None:
    """A fresh process that loads ``models:/`` from a SQLite store and predicts does not
    import SQLAlchemy (ADR 0020), the tracking service, what logging a model needs, the
    data service, or the deployment and monitor stores.
    """
    import json
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    env.update(KEEL_HOME=str(tmp_path / "home"), KEEL_CAPTURE_ENVIRONMENT="false")
    setup = (
        "import keel\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "with keel.start_run():\n"
        "    info = keel.log_model(LogisticRegression(max_iter=500).fit(X, y), "
        "input_example=X[:3])\n"
        "keel.register_model(info.uri, 'iris')\n"
    )
    subprocess.run([sys.executable, "-c", setup], env=env, check=True, capture_output=True)
    load = (
        "import json, sys\n"
        "import keel\n"
        "from sklearn.datasets import load_iris\n"
        "X, _ = load_iris(return_X_y=True, as_frame=True)\n"
        "predicted = keel.load_model('models:/iris/1').predict(X[:2]).tolist()\n"
        "unwanted = ('keel.data._service', 'keel.stores.metadata._deployments', "
        "'keel.stores.metadata._monitors', 'sqlalchemy', 'keel.tracking', "
        "'keel.models._service', 'keel.models._requirements')\n"
        "print(json.dumps({'predicted': predicted, "
        "'loaded': [m for m in unwanted if m in sys.modules]}))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", load], env=env, check=True, capture_output=True, text=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["predicted"]) == 2
    assert result["loaded"] == []
