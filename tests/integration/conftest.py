"""Serving fixtures: registered models in a fresh KEEL_HOME and real uvicorn servers."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

Server = Callable[..., Any]


class Flaky:
    """A pyfunc model that raises on rows whose ``x0`` is above 100 (a model bug)."""

    def predict(self, X: Any) -> Any:
        frame = pd.DataFrame(X)
        if (frame["x0"] > 100).any():
            raise ValueError("x0 above 100 breaks this model")
        return (frame["x0"] > 0).astype("int64").to_numpy()


def numeric_data(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["x0", "x1", "x2", "x3"])
    X["n"] = rng.integers(0, 10, size=n)
    y = pd.Series((X["x0"] + 0.5 * X["x1"] + 0.1 * X["n"] > 0.4).astype(int), name="y")
    return X, y


def mixed_data(n: int = 400, seed: int = 1) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "band": pd.Categorical(rng.choice(["a", "b", "c"], size=n)),
        }
    )
    y = pd.Series(((X["x"] > 0) | (X["band"] == "a")).astype(int), name="y")
    return X, y


def log_numeric(C: float = 1.0, name: str = "num") -> Any:
    from sklearn.linear_model import LogisticRegression

    import keel

    X, y = numeric_data()
    with keel.start_run(experiment="serving"):
        model = LogisticRegression(C=C, max_iter=1000).fit(X, y)
        info = keel.log_model(model, name="model", input_example=X.iloc[:5])
    return keel.register_model(info.uri, name), model


def log_mixed(name: str = "mixed") -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    import keel

    X, y = mixed_data()
    pipe = Pipeline(
        [
            (
                "prep",
                ColumnTransformer(
                    [("band", OneHotEncoder(handle_unknown="ignore"), ["band"])],
                    remainder="passthrough",
                ),
            ),
            ("clf", LogisticRegression()),
        ]
    )
    with keel.start_run(experiment="serving"):
        pipe.fit(X, y)
        info = keel.log_model(pipe, name="model", input_example=X.iloc[:5])
    return keel.register_model(info.uri, name), pipe


def log_flaky(name: str = "flaky") -> Any:
    import keel

    X, _ = numeric_data()
    with keel.start_run(experiment="serving"):
        info = keel.log_model(Flaky(), name="model", input_example=X.iloc[:5], allow_pickle=True)
    return keel.register_model(info.uri, name)


def champion(name: str, version: int) -> None:
    import keel

    keel.set_alias(name, "champion", version, override=True, actor="test", reason="test")


@contextmanager
def running(app: Any) -> Iterator[str]:
    """``app`` on a real uvicorn server on 127.0.0.1 (an ephemeral port), until ready."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    try:
        LOOPS[url] = server.servers[0].get_loop()
        while httpx.get(f"{url}/ready").status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready: {httpx.get(f'{url}/ready').text}")
            time.sleep(0.05)
        yield url
    finally:
        LOOPS.pop(url, None)
        server.should_exit = True
        thread.join(30)


LOOPS: dict[str, asyncio.AbstractEventLoop] = {}  # the event loop of each running server


@contextmanager
def loop_held(url: str) -> Iterator[None]:
    """Block the server at ``url``'s event loop for the body of the ``with``.

    What clients send meanwhile waits in the sockets, and the server reads it all in
    one go when the block ends: a burst that arrives together, whatever the speed of
    this host. The body must end within 30 s.
    """
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        held.set()
        release.wait(30)

    LOOPS[url].call_soon_threadsafe(hold)
    assert held.wait(30), "the server's event loop did not run the hold"
    try:
        yield
    finally:
        release.set()


def make_app(
    target: str,
    tmp_path: Path,
    *,
    deployment: str | None = None,
    log: bool = True,
    allow_pickle: bool = False,
    freeze_after_load: bool = False,
    **options: Any,
) -> Any:
    """The app ``keel serve`` would build for ``target`` (a model URI) or a deployment."""
    from keel._server import build_app
    from keel.config import load_settings
    from keel.context import get_context

    settings = dataclasses.replace(
        load_settings(),
        serve_target=("deployment:" + deployment) if deployment else target,
        serve_log=log,
        serve_allow_pickle=allow_pickle,
        serve_poll_interval=options.pop("poll_interval", 0.2),
        prediction_log_dir=tmp_path / "predictions",
        **{f"serve_{k}": v for k, v in options.items()},
    )
    return build_app(get_context(), settings, freeze_after_load=freeze_after_load)


@pytest.fixture
def serve_app() -> Callable[..., Any]:
    return make_app
