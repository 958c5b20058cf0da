"""``keel serve``'s app on a real uvicorn server: answers, refusals, failures, swaps."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pytest

from conftest import (
    champion,
    log_flaky,
    log_mixed,
    log_numeric,
    loop_held,
    make_app,
    mixed_data,
    numeric_data,
    running,
)

pytestmark = pytest.mark.usefixtures("keel_home")
COLUMNS = ["x0", "x1", "x2", "x3", "n"]


def _split(frame: Any) -> dict[str, Any]:
    return {"columns": list(frame.columns), "data": frame.to_numpy().tolist()}


def _records(frame: Any) -> list[dict[str, Any]]:
    out = json.loads(frame.to_json(orient="records"))
    assert isinstance(out, list)
    return out


def _wait_for(predicate: Any, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def _metric(url: str, prefix: str) -> float:
    for line in httpx.get(f"{url}/metrics").text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def test_predict_answers_like_the_model_in_both_shapes(tmp_path: Path) -> None:
    version, model = log_numeric()
    champion("num", version.version)
    X, _ = numeric_data()
    rows = X.iloc[:7]
    with running(make_app("models:/num@champion", tmp_path)) as url:
        for body in (_split(rows), _records(rows)):
            answer = httpx.post(f"{url}/predict", json=body)
            assert answer.status_code == 200, answer.text
            got = answer.json()
            assert got["predictions"] == model.predict(rows).tolist()
            np.testing.assert_allclose(got["probabilities"], model.predict_proba(rows), rtol=1e-8)
            assert got["classes"] == [0, 1]
            assert got["model"]["version"] == version.version
            assert answer.headers["x-request-id"] == got["request_id"]
        mlflow = httpx.post(f"{url}/invocations", json={"dataframe_split": _split(rows)})
        assert mlflow.json() == {"predictions": model.predict(rows).tolist()}
        records = httpx.post(f"{url}/invocations", json={"dataframe_records": _records(rows)})
        assert records.json() == {"predictions": model.predict(rows).tolist()}


def test_mixed_types_and_a_pipeline_that_selects_columns_by_name(tmp_path: Path) -> None:
    version, pipe = log_mixed()
    X, _ = mixed_data()
    rows = X.iloc[:9]
    with running(make_app(f"models:/mixed/{version.version}", tmp_path)) as url:
        body = {"columns": ["x", "band"], "data": [[float(x), str(b)] for x, b in rows.to_numpy()]}
        got = httpx.post(f"{url}/predict", json=body).json()
        assert got["predictions"] == pipe.predict(rows).tolist()
        unseen = httpx.post(f"{url}/predict", json=[{"x": 0.5, "band": "zzz"}])
        assert unseen.status_code == 200  # unseen categories reach the model as missing
        wrong = httpx.post(f"{url}/predict", json=[{"x": 0.5, "band": ["a"]}])
        assert wrong.status_code == 422


@pytest.mark.parametrize(
    ("body", "status", "row", "column", "reason"),
    [
        ([{"x0": "1", "x1": 0, "x2": 0, "x3": 0, "n": 1}], 422, 0, "x0", "expected a number"),
        ([{"x0": True, "x1": 0, "x2": 0, "x3": 0, "n": 1}], 422, 0, "x0", "expected a number"),
        ([{"x1": 0, "x2": 0, "x3": 0, "n": 1}], 422, 0, "x0", "missing column"),
        ([{"x0": 0, "x1": 0, "x2": 0, "x3": 0, "n": 1, "z": 1}], 422, 0, "z", "unexpected column"),
        ([{"x0": None, "x1": 0, "x2": 0, "x3": 0, "n": 1}], 422, 0, "x0", "is null"),
        ([{"x0": 0, "x1": 0, "x2": 0, "x3": 0, "n": 2**63}], 422, 0, "n", "int64"),
        ([{"x0": 0, "x1": 0, "x2": 0, "x3": 0, "n": 1.5}], 422, 0, "n", "not a whole number"),
        ({"columns": COLUMNS, "data": [[0, 0, 0, 0, 1], [0, 0]]}, 422, 1, None,
         "expected a list of 5 values"),
        ({"columns": ["x0", "x0"], "data": [[1, 2]]}, 400, None, None, None),
        ([], 400, None, None, None),
        ({"rows": []}, 400, None, None, None),
        ("just a string", 400, None, None, None),
    ],
)  # fmt: skip
def test_bad_input_is_refused_before_the_model_runs(
    tmp_path: Path, body: Any, status: int, row: int | None, column: str | None, reason: str | None
) -> None:
    version, _ = log_numeric()
    with running(make_app(f"models:/num/{version.version}", tmp_path)) as url:
        answer = httpx.post(f"{url}/predict", json=body)
        assert answer.status_code == status, answer.text
        error = answer.json()["error"]
        assert error["message"]
        assert answer.json()["request_id"]
        if reason is not None:
            problems = error["problems"]
            assert any(
                p["row"] == row and p["column"] == column and reason in p["reason"]
                for p in problems
            ), problems


def test_nan_infinity_malformed_and_empty_bodies(tmp_path: Path) -> None:
    version, _ = log_numeric()
    with running(make_app(f"models:/num/{version.version}", tmp_path)) as url:
        row = '{"x0": %s, "x1": 0, "x2": 0, "x3": 0, "n": 1}'
        for token, reason in (("NaN", "NaN"), ("Infinity", "infinite"), ("-Infinity", "infinite")):
            answer = httpx.post(f"{url}/predict", content="[" + row % token + "]")
            assert answer.status_code == 422, answer.text
            assert reason in answer.json()["error"]["problems"][0]["reason"]
        assert httpx.post(f"{url}/predict", content=b"[{").status_code == 400
        assert httpx.post(f"{url}/predict", content=b"").status_code == 400
        assert httpx.post(f"{url}/predict", content=b"   ").status_code == 400
        assert httpx.post(f"{url}/predict", content=b"\xff\xfe").status_code == 400
        deep = "[" * 100_000 + "]" * 100_000
        assert httpx.post(f"{url}/predict", content=deep).status_code == 400
        assert httpx.get(f"{url}/health").status_code == 200


def test_caps_on_rows_and_body_size(tmp_path: Path) -> None:
    version, _ = log_numeric()
    app = make_app(f"models:/num/{version.version}", tmp_path, max_rows=10, max_body_bytes=4096)
    with running(app) as url:
        rows = [{"x0": 0, "x1": 0, "x2": 0, "x3": 0, "n": 1}] * 11
        assert httpx.post(f"{url}/predict", json=rows).status_code == 413
        big = httpx.post(f"{url}/predict", content=b"[" + b" " * 5000 + b"]")
        assert big.status_code == 413
        assert "4096" in big.json()["error"]["message"]
        # a declared oversized body is refused from its header, before it is sent
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000000000\r\n\r\n"
            )
            reply = sock.recv(4096)
        assert reply.startswith(b"HTTP/1.1 413"), reply[:100]
        assert httpx.get(f"{url}/health").status_code == 200


def test_a_model_that_raises_fails_only_that_request(tmp_path: Path) -> None:
    version = log_flaky()
    X, _ = numeric_data()
    good = _records(X.iloc[:3])
    bad = [dict(good[0], x0=500.0)]
    app = make_app(f"models:/flaky/{version.version}", tmp_path, allow_pickle=True)
    with running(app) as url, httpx.Client() as client:
        results: list[int] = []

        def send(body: Any) -> None:
            results.append(client.post(f"{url}/predict", json=body).status_code)

        threads = [
            threading.Thread(target=send, args=(bad if i % 5 == 0 else good,)) for i in range(40)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results.count(500) == 8
        assert results.count(200) == 32
        failed = client.post(f"{url}/predict", json=bad)
        assert failed.status_code == 500
        assert failed.json()["request_id"] in failed.json()["error"]["message"]
        assert client.get(f"{url}/ready").status_code == 200


def test_health_ready_metadata_openapi_and_metrics(tmp_path: Path) -> None:
    version, _ = log_numeric()
    champion("num", version.version)
    with running(make_app("models:/num@champion", tmp_path)) as url:
        meta = httpx.get(f"{url}/metadata").json()
        assert meta["deployment"] == "num"
        model = meta["variants"][0]["model"]
        assert model["version"] == version.version
        assert [c["name"] for c in model["signature"]["inputs"]] == ["x0", "x1", "x2", "x3", "n"]
        assert model["lineage"]["run"]["id"] == version.run_id
        schema = httpx.get(f"{url}/openapi.json").json()
        record = schema["components"]["schemas"]["Record"]
        assert record["properties"]["n"]["type"] == "integer"
        assert record["required"] == ["x0", "x1", "x2", "x3", "n"]
        X, _ = numeric_data()
        for _ in range(3):
            httpx.post(f"{url}/predict", json=_split(X.iloc[:4]))
        httpx.post(f"{url}/predict", json=[])
        text = httpx.get(f"{url}/metrics").text
        assert (
            "keel_requests_total{"
            f'deployment="num",endpoint="predict",model_version="{version.version}",status="200"'
            "} 3.0" in text
        )
        assert 'status="400"' in text
        assert "keel_request_duration_seconds_bucket" in text
        assert "keel_batch_rows_bucket" in text
        assert (
            "keel_model_info{"
            f'deployment="num",model="num",variant="primary",version="{version.version}"'
            "} 1.0" in text
        )
        assert "keel_predictions_total" in text


def test_prediction_log_and_feedback_round_trip(tmp_path: Path) -> None:
    from keel.serving import PredictionLogReader

    version, model = log_numeric()
    X, _ = numeric_data()
    with running(make_app(f"models:/num/{version.version}", tmp_path)) as url:
        answer = httpx.post(
            f"{url}/predict", json=_split(X.iloc[:5]), headers={"x-request-id": "req-1"}
        )
        assert answer.json()["request_id"] == "req-1"
        fed = httpx.post(f"{url}/feedback", json={"request_id": "req-1", "labels": [1, 0, 1, 0, 1]})
        assert fed.status_code == 202
        assert fed.json() == {"accepted": 5}
        assert httpx.post(f"{url}/feedback", json={"request_id": "req-1"}).status_code == 400
        assert (
            httpx.post(f"{url}/feedback", json={"request_id": "../x", "label": 1}).status_code
            == 400
        )
        reader = PredictionLogReader(tmp_path / "predictions")
        _wait_for(lambda: len(reader.segments("num", kind="feedback")) > 0)
    table = reader.read("num", with_feedback=True)
    assert table.num_rows == 5
    frame = table.to_pandas().sort_values("keel_row")
    assert frame["keel_request_id"].tolist() == ["req-1"] * 5
    np.testing.assert_allclose(
        frame[["x0", "x1", "x2", "x3"]], X.iloc[:5][["x0", "x1", "x2", "x3"]]
    )
    assert frame["n"].tolist() == X["n"].iloc[:5].tolist()
    assert frame["keel_prediction"].tolist() == model.predict(X.iloc[:5]).tolist()
    np.testing.assert_allclose(frame["keel_proba_1"], model.predict_proba(X.iloc[:5])[:, 1])
    assert frame["keel_label"].tolist() == ["1", "0", "1", "0", "1"]
    assert frame["keel_model_version"].unique().tolist() == [str(version.version)]


def test_an_unwritable_log_directory_does_not_stop_serving(tmp_path: Path) -> None:
    version, _ = log_numeric()
    (tmp_path / "predictions").write_text("a file where the log directory should be")
    X, _ = numeric_data()
    with running(make_app(f"models:/num/{version.version}", tmp_path)) as url:
        for _ in range(5):
            assert httpx.post(f"{url}/predict", json=_split(X.iloc[:2])).status_code == 200
        _wait_for(lambda: _metric(url, "keel_prediction_log_errors_total") >= 1)
        assert _metric(url, "keel_prediction_log_dropped_total") >= 2
        assert httpx.post(f"{url}/predict", json=_split(X.iloc[:2])).status_code == 200


def test_promoting_under_load_swaps_with_no_failed_request(tmp_path: Path) -> None:
    import keel

    v1, _ = log_numeric(C=1.0)
    champion("num", v1.version)
    v2, _ = log_numeric(C=0.01)
    X, _ = numeric_data()
    body = _split(X.iloc[:3])
    with running(make_app("models:/num@champion", tmp_path, poll_interval=0.1)) as url:
        failures: list[str] = []
        seen: set[int] = set()
        stop = threading.Event()

        def hammer() -> None:
            with httpx.Client() as client:
                while not stop.is_set():
                    answer = client.post(f"{url}/predict", json=body)
                    if answer.status_code != 200:
                        failures.append(answer.text)
                    else:
                        seen.add(answer.json()["model"]["version"])

        threads = [threading.Thread(target=hammer) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        keel.set_alias("num", "champion", v2.version, override=True, actor="t", reason="swap")
        _wait_for(lambda: v2.version in seen)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        assert failures == []
        assert seen == {v1.version, v2.version}
        text = httpx.get(f"{url}/metrics").text
        assert 'keel_model_swaps_total{deployment="num",variant="primary"} 1.0' in text


def test_requests_before_the_model_is_loaded_get_503(tmp_path: Path) -> None:
    import asyncio

    version, _ = log_numeric()
    app = make_app(f"models:/num/{version.version}", tmp_path)
    runtime = app.runtime
    assert not runtime.ready

    async def call() -> tuple[int, bytes]:
        async def body() -> Any:
            yield b"[]"

        status, content, _ = await app.endpoint.handle("predict", {}, body())
        return status, content

    status, content = asyncio.run(call())
    assert status == 503
    assert b"GET /ready" in content


def test_batches_group_concurrent_requests(tmp_path: Path) -> None:
    """Requests that arrive together share predict calls and each gets its own rows back.

    The burst is made real on any host: 48 kept-alive connections send while the
    server's event loop is held, so the server finds all 48 requests at once.
    """
    import http.client

    version, model = log_numeric()
    X, _ = numeric_data()
    with running(make_app(f"models:/num/{version.version}", tmp_path, max_wait_ms=5.0)) as url:
        port = int(url.rsplit(":", 1)[1])
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(48)]
        for connection in connections:  # open and warm each connection before the burst
            connection.request("GET", "/health")
            assert connection.getresponse().read()
        batches_before = _metric(url, "keel_batch_requests_count")
        with loop_held(url):
            for i, connection in enumerate(connections):
                body = json.dumps(_split(X.iloc[i : i + 1]))
                connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
        for i, connection in enumerate(connections):
            answer = connection.getresponse()
            assert answer.status == 200
            got = json.loads(answer.read())
            assert got["predictions"] == model.predict(X.iloc[i : i + 1]).tolist()
            connection.close()
        batches = _metric(url, "keel_batch_requests_count") - batches_before
        assert 1 <= batches <= 6, f"48 simultaneous requests took {batches} predict calls"


def test_unwritable_log_feedback_and_no_log_mode(tmp_path: Path) -> None:
    version, _ = log_numeric()
    with running(make_app(f"models:/num/{version.version}", tmp_path, log=False)) as url:
        answer = httpx.post(f"{url}/feedback", json={"request_id": "r1", "label": 1})
        assert answer.status_code == 409
        assert "--no-log" in answer.json()["error"]["message"]
    assert not (tmp_path / "predictions").exists()


def test_log_table_types(tmp_path: Path) -> None:
    from keel.serving import PredictionLogReader

    version, _ = log_mixed()
    X, _ = mixed_data()
    with running(make_app(f"models:/mixed/{version.version}", tmp_path)) as url:
        body = {
            "columns": ["x", "band"],
            "data": [[float(x), str(b)] for x, b in X.iloc[:4].to_numpy()],
        }
        assert httpx.post(f"{url}/predict", json=body).status_code == 200
        reader = PredictionLogReader(tmp_path / "predictions")
        _wait_for(lambda: len(reader.segments("mixed")) > 0)
    table = reader.read("mixed")
    assert table.schema.field("x").type == pa.float64()
    assert table.column("band").to_pylist() == [str(b) for b in X["band"].iloc[:4]]


def test_a_serving_process_freezes_what_its_first_load_left_alive(tmp_path: Path) -> None:
    import gc

    version, _ = log_numeric()
    champion("num", version.version)
    gc.unfreeze()
    try:
        with running(make_app("models:/num@champion", tmp_path, log=False)) as url:
            assert httpx.get(f"{url}/ready").status_code == 200
            assert gc.get_freeze_count() == 0  # a host process (tests, the demo) is left alone
        with running(
            make_app("models:/num@champion", tmp_path, log=False, freeze_after_load=True)
        ) as url:
            assert gc.get_freeze_count() > 0
            body = {"columns": COLUMNS, "data": [[0.1, 0.2, 0.3, 0.4, 1]]}
            assert httpx.post(f"{url}/predict", json=body).status_code == 200
    finally:
        gc.unfreeze()
