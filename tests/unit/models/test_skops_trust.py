"""skops is imported without its start-up scans; trust stays explicit and complete."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

from keel.core._models import DESCRIPTOR
from keel.errors import IntegrityError
from keel.models import ModelService
from keel.models._flavors import load_bytes

ESTIMATORS = (
    "sklearn.pipeline.Pipeline",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.preprocessing._data.StandardScaler",
)


def _logged(service: ModelService, tracking: Any, run_id: str, pipeline: Any) -> tuple[Any, bytes]:
    info = service.log_model(run_id, pipeline)
    (digest,) = info.files.values()
    return info, tracking.artifacts.get_bytes(digest)


def test_package_records_every_type_of_its_file(
    service: ModelService, tracking: Any, run_id: str, pipeline: Any
) -> None:
    info, _ = _logged(service, tracking, run_id, pipeline)
    assert info.trusted_types_complete is True
    assert set(ESTIMATORS) <= set(info.trusted_types)
    descriptor = orjson.loads(tracking.read_artifact(run_id, f"model/{DESCRIPTOR}"))
    assert descriptor["trusted_types_complete"] is True
    assert set(ESTIMATORS) <= set(descriptor["trusted_types"])


def test_a_type_left_out_of_a_complete_list_is_refused(
    service: ModelService, tracking: Any, run_id: str, pipeline: Any
) -> None:
    info, data = _logged(service, tracking, run_id, pipeline)
    fewer = [t for t in info.trusted_types if not t.endswith("LogisticRegression")]
    with pytest.raises(IntegrityError, match="LogisticRegression"):
        load_bytes("skops", data, model_class=info.model_class, trusted=fewer, trust_complete=True)


def test_older_packages_still_get_skops_default_estimators(
    service: ModelService, tracking: Any, run_id: str, pipeline: Any, breast_cancer: Any
) -> None:
    # Packages logged before the complete list recorded only types beyond the default.
    info, data = _logged(service, tracking, run_id, pipeline)
    legacy = [t for t in info.trusted_types if t not in ESTIMATORS]
    model = load_bytes("skops", data, model_class=info.model_class, trusted=legacy)
    X, _ = breast_cancer
    assert (model.predict(X[:20]) == pipeline.predict(X[:20])).all()
    descriptor = info.to_dict()
    del descriptor["trusted_types_complete"]
    assert type(info).from_dict(descriptor).trusted_types_complete is False


def _python(code: str, home: Path) -> str:
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={"KEEL_HOME": str(home), "PATH": "/usr/bin:/bin"},
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.strip().splitlines()[-1]


LOG_AND_LOAD = """
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from keel.context import get_context
    from keel.models import ModelService

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = Pipeline([("s", StandardScaler()), ("m", LogisticRegression(max_iter=5000))])
    model.fit(X, y)
    tracking = get_context().tracking
    service = ModelService(tracking)
    info = service.log_model(tracking.create_run("skops").id, model, input_example=X[:5])
    loaded = service.load_model(info.uri)
    assert (loaded.predict(X[:50]) == model.predict(X[:50])).all()
    assert info.trusted_types_complete
    assert "sklearn.pipeline.Pipeline" in info.trusted_types
"""


def test_keel_does_not_import_every_estimator_and_skops_defaults_still_hold(
    tmp_path: Path,
) -> None:
    code = (
        LOG_AND_LOAD
        + """
    import sys
    scanned_by_keel = "sklearn.neural_network" in sys.modules
    import skops.io as sio
    # Code outside Keel relying on skops' default list sees skops' own list.
    default_ok = sio.get_untrusted_types(data=sio.dumps(LogisticRegression())) == []
    print(scanned_by_keel, default_ok, "sklearn.neural_network" in sys.modules)
    """
    )
    assert _python(code, tmp_path) == "False True True"


def test_skops_imported_before_keel(tmp_path: Path) -> None:
    code = "import skops.io\n" + textwrap.dedent(LOG_AND_LOAD) + "print('ok')\n"
    assert _python(code, tmp_path) == "ok"
