"""Deployment policies as values: every field checked, errors naming it, JSON round trips."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from keel.core._deployments import (
    CanaryPolicy,
    Deployment,
    DeploymentEvent,
    DeploymentPolicy,
    Route,
    validate_deployment_name,
)
from keel.errors import InvalidArgument

RUN = "0123456789abcdef" * 2
PRIMARY = {"model": "models:/credit@champion"}
CANARY = {"model": "models:/credit/2", "percent": 10}

# names ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["credit", "c", "credit-v2", "a_b-c9", "a" + "x" * 62])
def test_valid_deployment_names(name: str) -> None:
    assert validate_deployment_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Credit", "9credit", "-credit", "cr edit", "credit/1", "crédit", "a" + "x" * 63, None, 3],
)
def test_invalid_deployment_names(name: object) -> None:
    with pytest.raises(InvalidArgument, match="invalid deployment name"):
        validate_deployment_name(name)


# invalid fields ---------------------------------------------------------------------


def _with(**parts: Any) -> dict[str, Any]:
    return {"routes": [PRIMARY]} | parts


def _canary(**fields: Any) -> dict[str, Any]:
    return _with(canary=CANARY | fields)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "policy.routes"),
        ({"routes": []}, "policy.routes"),
        ({"routes": "models:/credit/1"}, "policy.routes"),
        ({"routes": [None]}, "policy.routes[0]"),
        ({"routes": [{}]}, "policy.routes[0].model"),
        ({"routes": [{"model": "credit"}]}, "policy.routes[0].model"),
        ({"routes": [{"model": "models:/credit/0"}]}, "policy.routes[0].model"),
        ({"routes": [{"model": "runs:/nothex/model"}]}, "policy.routes[0].model"),
        ({"routes": [{"model": 3}]}, "policy.routes[0].model"),
        ({"routes": [PRIMARY, {"model": "s3://b/m"}]}, "policy.routes[1].model"),
        ({"routes": [PRIMARY | {"weight": 0}]}, "policy.routes[0].weight"),
        ({"routes": [PRIMARY | {"weight": -1}]}, "policy.routes[0].weight"),
        ({"routes": [PRIMARY | {"weight": 1e7}]}, "policy.routes[0].weight"),
        ({"routes": [PRIMARY | {"weight": "0.5"}]}, "policy.routes[0].weight"),
        ({"routes": [PRIMARY | {"weight": True}]}, "policy.routes[0].weight"),
        ({"routes": [PRIMARY | {"weight": math.nan}]}, "policy.routes[0].weight"),
        ({"routes": [PRIMARY | {"weight": math.inf}]}, "policy.routes[0].weight"),
        ({"routes": [PRIMARY, PRIMARY | {"weight": None}]}, "policy.routes[1].weight"),
        (_with(canary="models:/credit/2"), "policy.canary"),
        (_with(canary={"percent": 10}), "policy.canary.model"),
        (_with(canary={"model": "models:/credit/2"}), "policy.canary.percent"),
        (_canary(percent=0), "policy.canary.percent"),
        (_canary(percent=100.5), "policy.canary.percent"),
        (_canary(percent="10"), "policy.canary.percent"),
        (_canary(max_error_rate_increase=-0.01), "policy.canary.max_error_rate_increase"),
        (_canary(max_error_rate_increase=1.5), "policy.canary.max_error_rate_increase"),
        (_canary(max_error_rate_increase=None), "policy.canary.max_error_rate_increase"),
        (_canary(max_latency_ratio=0.9), "policy.canary.max_latency_ratio"),
        (_canary(max_latency_ratio=1e4), "policy.canary.max_latency_ratio"),
        (_canary(max_latency_ratio=math.nan), "policy.canary.max_latency_ratio"),
        (_canary(min_requests=0), "policy.canary.min_requests"),
        (_canary(min_requests=1.5), "policy.canary.min_requests"),
        (_canary(min_requests=True), "policy.canary.min_requests"),
        (_canary(min_requests="100"), "policy.canary.min_requests"),
        (_with(shadow=5), "policy.shadow"),
        (_with(shadow={"name": "mirror"}), "policy.shadow.model"),
        (_with(shadow="models:/credit"), "policy.shadow.model"),
        (_with(shadow={"model": "runs:/x/model"}), "policy.shadow.model"),
    ],
)
def test_every_invalid_field_is_named(data: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        DeploymentPolicy.from_dict(data)
    assert field in caught.value.message


@pytest.mark.parametrize(
    "data",
    [
        {"routes": [PRIMARY | {"name": "Primary"}]},
        {"routes": [PRIMARY | {"name": "v 2"}]},
        {"routes": [PRIMARY | {"name": 7}]},
        _canary(name="x" * 40),
        _with(shadow={"model": "models:/credit/3", "name": "-mirror"}),
    ],
)
def test_invalid_variant_names_are_refused(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="invalid variant name"):
        DeploymentPolicy.from_dict(data)


@pytest.mark.parametrize(
    "data",
    [
        {"routes": [PRIMARY, PRIMARY | {"name": "primary"}]},
        _canary(name="primary"),
        _with(shadow={"model": "models:/credit/3", "name": "primary"}),
        _with(
            canary=CANARY | {"name": "mirror"}, shadow={"model": PRIMARY["model"], "name": "mirror"}
        ),
    ],
)
def test_a_variant_name_used_twice_is_refused(data: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="used twice"):
        DeploymentPolicy.from_dict(data)


@pytest.mark.parametrize("data", [None, [], "routes", 3])
def test_a_policy_must_be_an_object(data: Any) -> None:
    with pytest.raises(InvalidArgument, match="must be an object"):
        DeploymentPolicy.from_dict(data)


def test_a_policy_needs_a_route() -> None:
    with pytest.raises(InvalidArgument, match="--model"):
        DeploymentPolicy(())


# accepted forms and defaults --------------------------------------------------------


def test_defaults_are_filled_in() -> None:
    found = DeploymentPolicy.from_dict(
        {
            "routes": [PRIMARY, {"model": f"runs:/{RUN}/model"}],
            "canary": CANARY,
            "shadow": PRIMARY["model"],
        }
    )
    assert found.routes == (
        Route("models:/credit@champion", 1.0, "primary"),
        Route(f"runs:/{RUN}/model", 1.0, "variant-2"),
    )
    assert found.canary == CanaryPolicy("models:/credit/2", 10.0)
    assert (found.canary.max_error_rate_increase, found.canary.max_latency_ratio) == (0.01, 2.0)
    assert (found.canary.min_requests, found.canary.name) == (100, "canary")
    assert (found.shadow, found.shadow_name) == ("models:/credit@champion", "shadow")


@pytest.mark.parametrize(
    ("data", "mode"),
    [
        ({"routes": [PRIMARY]}, "single"),
        ({"routes": [PRIMARY, {"model": "models:/credit/1"}]}, "ab"),
        (_with(canary=CANARY), "canary"),
        (_with(shadow="models:/credit/3"), "single+shadow"),
        ({"routes": [PRIMARY, PRIMARY | {"name": "b"}], "shadow": "models:/credit/3"}, "ab+shadow"),
        (_with(canary=CANARY, shadow="models:/credit/3"), "canary+shadow"),
    ],
)
def test_mode_names_the_policy(data: dict[str, Any], mode: str) -> None:
    assert DeploymentPolicy.from_dict(data).mode == mode


def test_the_boundaries_are_accepted() -> None:
    found = DeploymentPolicy.from_dict(
        {
            "routes": [PRIMARY | {"weight": 1e6}],
            "canary": CANARY
            | {
                "percent": 100,
                "max_error_rate_increase": 0,
                "max_latency_ratio": 1,
                "min_requests": 1,
            },
        }
    )
    assert found.routes[0].weight == 1e6
    assert found.canary is not None
    assert (found.canary.percent, found.canary.max_error_rate_increase) == (100.0, 0.0)


def test_models_and_without_canary() -> None:
    found = DeploymentPolicy.from_dict(_with(canary=CANARY, shadow="models:/credit/3"))
    assert found.models() == {
        "primary": "models:/credit@champion",
        "canary": "models:/credit/2",
        "shadow": "models:/credit/3",
    }
    rolled = found.without_canary()
    assert (rolled.canary, rolled.routes, rolled.shadow) == (None, found.routes, found.shadow)
    assert rolled.mode == "single+shadow"


def test_single_builds_a_checked_policy() -> None:
    assert DeploymentPolicy.single("models:/credit/4").mode == "single"
    with pytest.raises(InvalidArgument, match=r"policy.routes\[0\].model"):
        DeploymentPolicy.single("credit")


def test_deployment_and_event_to_dict() -> None:
    policy = DeploymentPolicy.single("models:/credit/4")
    found = Deployment("d" * 32, "credit", policy, 3, 1.0, 2.0, "scoring").to_dict()
    assert found == {
        "id": "d" * 32,
        "name": "credit",
        "revision": 3,
        "created_at": 1.0,
        "updated_at": 2.0,
        "description": "scoring",
        "policy": policy.to_dict(),
    }
    event = DeploymentEvent(3, "rollback", policy, 2.0, "ops", "slow", {"p95": 0.3}).to_dict()
    assert event["details"] == {"p95": 0.3}
    assert DeploymentPolicy.from_dict(event["policy"]) == policy


# round trips ------------------------------------------------------------------------

_names = st.from_regex(r"[a-z][a-z0-9_\-]{0,15}", fullmatch=True)
_model_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,20}", fullmatch=True)
_aliases = st.from_regex(r"[A-Za-z][A-Za-z0-9_\-]{0,20}", fullmatch=True).filter(
    lambda a: not (a[0] == "v" and a[1:].isdigit())
)
_uris = st.one_of(
    st.builds(lambda n, v: f"models:/{n}/{v}", _model_names, st.integers(1, 10**6)),
    st.builds(lambda n, a: f"models:/{n}@{a}", _model_names, _aliases),
    st.builds(
        lambda r, p: f"runs:/{r}/{p}",
        st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
        st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8}){0,2}", fullmatch=True),
    ),
)


def _number(low: float, high: float, *, exclude_low: bool = True) -> st.SearchStrategy[float]:
    return st.floats(low, high, exclude_min=exclude_low, allow_nan=False) | st.integers(
        int(low) + (1 if exclude_low else 0), int(high)
    ).map(float)


_routes = st.lists(
    st.fixed_dictionaries({"model": _uris, "weight": _number(0, 1e6)}, optional={"name": _names}),
    min_size=1,
    max_size=4,
)
_canaries = st.fixed_dictionaries(
    {"model": _uris, "percent": _number(0, 100)},
    optional={
        "max_error_rate_increase": _number(0, 1, exclude_low=False),
        "max_latency_ratio": _number(1, 1000, exclude_low=False),
        "min_requests": st.integers(1, 10**9),
        "name": _names,
    },
)
_shadows = st.one_of(_uris, st.fixed_dictionaries({"model": _uris}, optional={"name": _names}))


@st.composite
def _policy_dicts(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {"routes": draw(_routes)}
    if draw(st.booleans()):
        data["canary"] = draw(_canaries)
    if draw(st.booleans()):
        data["shadow"] = draw(_shadows)
    return data


def _variant_names(data: dict[str, Any]) -> list[str]:
    names = [
        r.get("name", "primary" if i == 0 else f"variant-{i + 1}")
        for i, r in enumerate(data["routes"])
    ]
    if data.get("canary") is not None:
        names.append(data["canary"].get("name", "canary"))
    shadow = data.get("shadow")
    if shadow is not None:
        names.append("shadow" if isinstance(shadow, str) else shadow.get("name", "shadow"))
    return names


@given(_policy_dicts())
def test_to_dict_and_from_dict_round_trip(data: dict[str, Any]) -> None:
    names = _variant_names(data)
    assume(len(names) == len(set(names)))
    policy = DeploymentPolicy.from_dict(data)
    assert list(policy.models()) == names
    assert DeploymentPolicy.from_dict(policy.to_dict()) == policy
    assert DeploymentPolicy.from_dict(orjson.loads(orjson.dumps(policy.to_dict()))) == policy
    assert policy.to_dict()["mode"] == policy.mode
