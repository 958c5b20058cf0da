"""Traffic policies on a real server: A/B weights, sticky keys, shadow, canary rollback."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import champion, log_flaky, log_numeric, make_app, numeric_data, running
from keel.core._deployments import DeploymentPolicy

pytestmark = pytest.mark.usefixtures("keel_home")


def _deployments() -> Any:
    from keel.context import get_context

    return get_context().deployments


def _body(i: int = 0) -> dict[str, Any]:
    X, _ = numeric_data()
    return {"columns": list(X.columns), "data": X.iloc[i : i + 1].to_numpy().tolist()}


def _wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_ab_weights_split_traffic_and_keys_are_sticky(tmp_path: Path) -> None:
    a, _ = log_numeric(C=1.0)
    b, _ = log_numeric(C=0.05)
    policy = DeploymentPolicy.from_dict(
        {
            "routes": [
                {"name": "a", "model": f"models:/num/{a.version}", "weight": 3},
                {"name": "b", "model": f"models:/num/{b.version}", "weight": 1},
            ]
        }
    )
    _deployments().create("ab", policy)
    with running(make_app("", tmp_path, deployment="ab")) as url, httpx.Client() as client:
        seen = Counter(
            client.post(f"{url}/predict", json=_body()).json()["variant"] for _ in range(400)
        )
        assert set(seen) == {"a", "b"}
        assert 0.62 < seen["a"] / 400 < 0.88  # 75% expected
        for key in ("alice", "bob", "carol", "dave"):
            variants = {
                client.post(f"{url}/predict", json=_body(), headers={"x-routing-key": key}).json()[
                    "variant"
                ]
                for _ in range(15)
            }
            assert len(variants) == 1, key
        versions = {
            client.post(f"{url}/predict", json=_body()).headers["x-model-version"]
            for _ in range(60)
        }
        assert versions == {str(a.version), str(b.version)}


def test_shadow_gets_a_copy_that_is_logged_never_returned(tmp_path: Path) -> None:
    from keel.serving import PredictionLogReader

    primary, _ = log_numeric(C=1.0)
    shadow, _ = log_numeric(C=0.05)
    policy = DeploymentPolicy.from_dict(
        {
            "routes": [{"model": f"models:/num/{primary.version}"}],
            "shadow": {"name": "challenger", "model": f"models:/num/{shadow.version}"},
        }
    )
    _deployments().create("shadowed", policy)
    reader = PredictionLogReader(tmp_path / "predictions")
    with running(make_app("", tmp_path, deployment="shadowed")) as url:
        for i in range(10):
            answer = httpx.post(f"{url}/predict", json=_body(i)).json()
            assert answer["variant"] == "primary"
            assert answer["model"]["version"] == primary.version

        def logged() -> bool:
            table = reader.read("shadowed")
            return table.num_rows == 20

        _wait_for(lambda: bool(reader.segments("shadowed")) and logged())
    frame = reader.read("shadowed").to_pandas()
    by_variant = frame.groupby("keel_variant")["keel_request_id"].apply(set)
    assert by_variant["primary"] == by_variant["challenger"]
    assert set(frame.loc[frame.keel_variant == "challenger", "keel_model_version"]) == {
        str(shadow.version)
    }


def test_a_failing_canary_is_rolled_back_and_recorded(tmp_path: Path) -> None:
    good, _ = log_numeric()
    flaky = log_flaky()
    policy = DeploymentPolicy.from_dict(
        {
            "routes": [{"model": f"models:/num/{good.version}"}],
            "canary": {
                "model": f"models:/flaky/{flaky.version}",
                "percent": 30,
                "min_requests": 20,
            },
        }
    )
    service = _deployments()
    service.create("canaried", policy)
    X, _ = numeric_data()
    bad_row = X.iloc[:1].copy()
    bad_row["x0"] = 500.0
    bad = {"columns": list(X.columns), "data": bad_row.to_numpy().tolist()}
    app = make_app("", tmp_path, deployment="canaried", allow_pickle=True, poll_interval=0.1)
    with running(app) as url, httpx.Client() as client:
        canary_failures = 0
        for _ in range(300):
            answer = client.post(f"{url}/predict", json=bad)
            if answer.status_code == 500:
                canary_failures += 1
            if service.get("canaried").policy.canary is None:
                break
        assert canary_failures >= 1
        _wait_for(lambda: service.get("canaried").policy.canary is None)
        history = service.history("canaried")
        assert history[-1].kind == "rollback"
        assert "error rate" in (history[-1].reason or "")
        _wait_for(lambda: app.runtime.router.canary is None)
        statuses = {client.post(f"{url}/predict", json=bad).status_code for _ in range(50)}
        assert statuses == {200}
        assert "keel_canary_rollbacks_total" in client.get(f"{url}/metrics").text


def test_a_policy_change_applies_live(tmp_path: Path) -> None:
    v1, _ = log_numeric(C=1.0)
    v2, _ = log_numeric(C=0.05)
    service = _deployments()
    service.create("live", DeploymentPolicy.single(f"models:/num/{v1.version}"))
    with running(make_app("", tmp_path, deployment="live", poll_interval=0.1)) as url:
        assert httpx.post(f"{url}/predict", json=_body()).json()["model"]["version"] == v1.version
        service.update("live", DeploymentPolicy.single(f"models:/num/{v2.version}"))
        _wait_for(
            lambda: (
                httpx.post(f"{url}/predict", json=_body()).json()["model"]["version"] == v2.version
            )
        )
        meta = httpx.get(f"{url}/metadata").json()
        assert meta["revision"] == service.get("live").revision


def test_an_alias_route_follows_the_champion(tmp_path: Path) -> None:
    import keel

    v1, _ = log_numeric(C=1.0)
    champion("num", v1.version)
    v2, _ = log_numeric(C=0.05)
    _deployments().create("champ", DeploymentPolicy.single("models:/num@champion"))
    with running(make_app("", tmp_path, deployment="champ", poll_interval=0.1)) as url:
        keel.set_alias("num", "champion", v2.version, override=True, actor="t", reason="t")
        _wait_for(
            lambda: (
                httpx.post(f"{url}/predict", json=_body()).json()["model"]["version"] == v2.version
            )
        )
