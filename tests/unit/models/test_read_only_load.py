"""Loading through read-only look-ups (ADR 0020) answers exactly as the full store does.

``keel.load_model`` in a process whose metadata store is not open yet reads a SQLite
store with ``SqliteReader``; anything it does not find is left to the full store, so
errors keep their usual messages. These tests hold the two paths to the same answers.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

import keel
from keel.context import get_context, reset_context
from keel.core._models import DESCRIPTOR
from keel.errors import IntegrityError, InvalidArgument, NotFound
from keel.stores.metadata import SqliteReader


class Doubler:
    def predict(self, X: Any) -> Any:
        return np.asarray(X)[:, 0] * 2


@pytest.fixture
def registered(keel_home: Path, pipeline: Any, breast_cancer: tuple[Any, Any]) -> dict[str, Any]:
    """Two versions of 'bc' (champion on 1, then moved to 2 and back), a pickled model,
    and a fresh context: the metadata store is not open."""
    X, _ = breast_cancer
    with keel.start_run(experiment="read-only") as run:
        first = keel.log_model(pipeline, name="model", input_example=X[:5])
        second = keel.log_model(pipeline, name="model2", input_example=X[:5])
        pickled = keel.log_model(Doubler(), name="pickled", input_example=X[:5], allow_pickle=True)
    keel.register_model(first.uri, "bc")
    keel.register_model(second.uri, "bc")
    keel.register_model(pickled.uri, "pickled")
    for version in (1, 2, 1):
        keel.set_alias("bc", "champion", version, override=True, actor="t", reason="test")
    keel.set_alias("bc", "challenger", 2)
    reset_context()
    return {"run_id": run.id, "X": X, "first": first.uri, "second": second.uri}


def _read_only() -> bool:
    return get_context()._metadata is None


@pytest.mark.parametrize(
    ("uri", "which"),
    [
        ("models:/bc/1", "first"),
        ("models:/bc/2", "second"),
        ("models:/bc@champion", "first"),
        ("models:/bc@challenger", "second"),
        (None, "first"),  # the runs:/ URI itself
    ],
)
def test_registered_and_run_uris_load_without_opening_the_store(
    registered: dict[str, Any], pipeline: Any, uri: str | None, which: str
) -> None:
    loaded = keel.load_model(uri or registered["first"])
    assert _read_only()
    assert loaded.info.uri == registered[which]
    X = registered["X"]
    np.testing.assert_array_equal(loaded.predict(X[:20]), pipeline.predict(X[:20]))


def test_the_reader_resolves_exactly_as_the_registry(registered: dict[str, Any]) -> None:
    context = get_context()
    quick = context.package_reader()
    assert quick is not None
    reader, _ = quick
    refs = ["bc/1", "bc/2", "bc@champion", "bc@challenger", "pickled/1"]
    answers = {ref: _source(reader, ref) for ref in refs}
    missing = [("bc", 3, None), ("bc", None, "nobody"), ("nope", 1, None)]
    assert all(reader.source(n, version=v, alias=a) is None for n, v, a in missing)
    assert context.package_reader() is not None
    expected = {ref: context.registry.get(ref).source for ref in refs}
    assert answers == expected
    assert context.package_reader() is None  # the store is open now: its answers rule


def _source(reader: SqliteReader, ref: str) -> str | None:
    if "@" in ref:
        name, alias = ref.split("@")
        return reader.source(name, alias=alias)
    name, version = ref.split("/")
    return reader.source(name, version=int(version))


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("models:/bc/3", "has no version 3"),
        ("models:/nope/1", "nope"),
        ("models:/bc@nobody", "nobody"),
        ("runs:/{run_id}/missing", "has no model package 'missing'"),
        ("runs:/0123456789abcdef0123456789abcdef/model", "no run"),
    ],
)
def test_what_the_reader_does_not_find_is_answered_by_the_store(
    registered: dict[str, Any], uri: str, message: str
) -> None:
    with pytest.raises(NotFound, match=message):
        keel.load_model(uri.format(run_id=registered["run_id"]))
    assert not _read_only()


def test_a_deleted_run_is_not_loaded_through_the_reader(registered: dict[str, Any]) -> None:
    get_context().tracking.delete_run(registered["run_id"])
    reset_context()
    with pytest.raises(NotFound, match="no run"):
        keel.load_model("models:/bc@champion")


def test_refusals_are_the_same_through_the_reader(registered: dict[str, Any]) -> None:
    with pytest.raises(InvalidArgument, match="allow_pickle=True"):
        keel.load_model("models:/pickled/1")
    assert _read_only()
    assert (
        keel.load_model("models:/pickled/1", allow_pickle=True)
        .predict(registered["X"][:3])
        .tolist()
        == (registered["X"]["mean radius"][:3] * 2).tolist()
    )

    run_id = registered["run_id"]
    tracking = get_context().tracking  # writes: open the store, then read afresh
    body = orjson.loads(tracking.read_artifact(run_id, f"model/{DESCRIPTOR}"))
    tracking.log_bytes(run_id, orjson.dumps(body), f"copy/{DESCRIPTOR}")
    tracking.log_bytes(run_id, b"another file", "forged/model.skops")
    body["files"] = {"forged/model.skops": "0" * 64}
    body["artifact_path"] = "forged"
    tracking.log_bytes(run_id, orjson.dumps(body), f"forged/{DESCRIPTOR}")
    reset_context()
    with pytest.raises(IntegrityError, match="copied or altered"):
        keel.load_model(f"runs:/{run_id}/copy")
    with pytest.raises(IntegrityError, match="digests differ"):
        keel.load_model(f"runs:/{run_id}/forged")
    assert _read_only()


def test_the_reader_only_opens_a_sqlite_store_at_the_head_revision(
    registered: dict[str, Any], keel_home: Path
) -> None:
    reset_context()
    database = keel_home / "keel.db"
    assert SqliteReader.open(f"sqlite:///{database}") is not None
    missing = keel_home / "elsewhere.db"
    assert SqliteReader.open(f"sqlite:///{missing}") is None
    assert not missing.exists()
    for uri in (
        "sqlite:///:memory:",
        "sqlite://",
        f"sqlite:///{database}?mode=ro",
        f"sqlite+pysqlite:///{database}",
        "postgresql+psycopg://postgres@127.0.0.1:5432/keel",
    ):
        assert SqliteReader.open(uri) is None, uri
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0005'")
    assert SqliteReader.open(f"sqlite:///{database}") is None
    (keel_home / "not-a-db.db").write_bytes(b"not a database")
    assert SqliteReader.open(f"sqlite:///{keel_home / 'not-a-db.db'}") is None
