"""The behaviour every Keel metadata store must show, as a pytest test class.

Subclass ``MetadataStoreConformance`` in a test module and provide a ``store`` fixture
returning an empty ``MetadataStore``; every test then runs against it. Keel runs it on
SQLite and PostgreSQL; a plugin store runs it on its own back-end.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa

from keel.core._entities import RunStatus
from keel.core._filter import parse_filter, parse_order_by
from keel.errors import AlreadyExists, Conflict, InvalidArgument, NotFound
from keel.stores.metadata import MetadataStore, summary_parts
from keel.stores.metadata._schema import runs
from keel.stores.metadata._store import CHUNK_POINTS
from keel.stores.metadata._summary import decode, from_tables
from keel.testing.conformance_deployments import _tables_named


def _search(store: MetadataStore, exp: str, text: str | None, **kwargs: Any) -> list[str]:
    order = parse_order_by(kwargs.pop("order_by", None))
    found = store.search_runs([exp], parse_filter(text), order, **kwargs)
    return [r.name for r in found]


def _in_threads(work: Callable[[int], None], workers: int) -> list[BaseException]:
    """Run ``work(0)`` ... ``work(workers - 1)`` at once; what they raised."""
    errors: list[BaseException] = []

    def guarded(worker: int) -> None:
        try:
            work(worker)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(w,)) for w in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def _same(left: Any, right: Any) -> bool:
    """Equal, counting NaN equal to NaN (values of params, metrics and tags)."""
    if isinstance(left, float) and isinstance(right, float) and left != left:
        return right != right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, tuple) and isinstance(right, tuple):
        return len(left) == len(right) and all(map(_same, left, right))
    return bool(left == right and type(left) is type(right))


def assert_summaries_match_tables(store: MetadataStore, run_ids: list[str]) -> None:
    """Each run's summary holds exactly what the params, metrics_latest and tags
    tables hold for it: the invariant every write must keep.
    """
    with store.engine.connect() as conn:
        expected = from_tables(conn, run_ids)
        stored = dict(
            conn.execute(sa.select(runs.c.id, runs.c.summary).where(runs.c.id.in_(run_ids))).all()
        )
    assert stored.keys() == set(run_ids)
    for run_id in run_ids:
        got, want = decode(stored[run_id]), decode(expected[run_id])
        assert _same(got, want), f"run {run_id}: summary {got} but tables hold {want}"


def check_summary_migration(uri: str) -> None:
    """Migrating an empty database at ``uri`` to 0005, filling it the way 0005 stored
    runs, then opening it (to head) gives every run the summary its tables imply.
    """
    import os

    from alembic import command
    from alembic.config import Config

    from keel.stores.metadata._engine import _MIGRATIONS

    engine = sa.create_engine(uri)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", os.fspath(_MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "0005")
            conn.execute(sa.text("INSERT INTO experiments VALUES ('e', 'old', 1.0, NULL)"))
            for i, run_id in enumerate(("r" * 32, "s" * 32, "t" * 32)):
                conn.execute(
                    sa.text(
                        "INSERT INTO runs (id, experiment_id, name, status, start_time, source) "
                        "VALUES (:id, 'e', :name, 'FINISHED', :start, '{}')"
                    ),
                    {"id": run_id, "name": f"run-{i}", "start": float(i)},
                )
            values = sa.text("INSERT INTO params VALUES (:r, :k, :v)")
            conn.execute(values, [{"r": "r" * 32, "k": "C", "v": "0.1"}])
            conn.execute(sa.text("INSERT INTO tags VALUES (:r, 'team', 'risk')"), {"r": "s" * 32})
            conn.execute(
                sa.text("INSERT INTO metrics_latest VALUES (:r, :k, :v, 0, 1.0)"),
                [
                    {"r": "r" * 32, "k": "auc", "v": 0.9},
                    {"r": "r" * 32, "k": "nan", "v": None},
                    {"r": "r" * 32, "k": "inf", "v": math.inf},
                ],
            )
    finally:
        engine.dispose()
    store = MetadataStore.open(uri)
    try:
        assert_summaries_match_tables(store, ["r" * 32, "s" * 32, "t" * 32])
        first = store.get_run("r" * 32)
        assert first.params == {"C": "0.1"}
        assert first.metrics["auc"] == 0.9
        assert first.metrics["inf"] == math.inf
        assert math.isnan(first.metrics["nan"])
        assert store.get_run("s" * 32).tags == {"team": "risk"}
        found = store.search_runs([], parse_filter("metrics.auc > 0.5"), ())
        assert [r.name for r in found] == ["run-0"]
        assert [r.name for r in store.search_runs(["e"], None, ())] == ["run-2", "run-1", "run-0"]
    finally:
        store.close()


class MetadataStoreConformance:
    """Experiments, runs, params, tags, metrics, artifacts and search on one store."""

    # experiments ----------------------------------------------------------------

    def test_experiment_names_are_unique(self, store: MetadataStore) -> None:
        created = store.create_experiment("credit")
        with pytest.raises(AlreadyExists, match="credit"):
            store.create_experiment("credit")
        assert store.get_or_create_experiment("credit").id == created.id
        assert store.get_experiment(created.id).name == "credit"
        assert [e.name for e in store.list_experiments()] == ["credit"]

    def test_unknown_experiment_is_not_found(self, store: MetadataStore) -> None:
        with pytest.raises(NotFound, match="keel experiments list"):
            store.get_experiment("0" * 32)
        with pytest.raises(NotFound):
            store.create_run("0" * 32, "orphan")
        assert store.list_experiments() == []

    def test_experiment_lists_run_counts(self, store: MetadataStore) -> None:
        exp = store.create_experiment("counted")
        for i in range(3):
            store.create_run(exp.id, f"r{i}")
        assert store.list_experiments()[0].run_count == 3

    # runs -----------------------------------------------------------------------

    def test_run_lifecycle(self, store: MetadataStore) -> None:
        exp = store.create_experiment("life")
        run = store.create_run(exp.id, "r", source={"user": "ada"}, tags_={"team": "risk"})
        got = store.get_run(run.id)
        assert got.status is RunStatus.RUNNING
        assert got.end_time is None
        assert got.tags == {"team": "risk"}
        assert got.source == {"user": "ada"}
        store.set_run_status(run.id, RunStatus.FAILED, 123.0)
        got = store.get_run(run.id)
        assert (got.status, got.end_time) == (RunStatus.FAILED, 123.0)
        with pytest.raises(Conflict, match="already FAILED"):
            store.set_run_status(run.id, RunStatus.FINISHED, 124.0)
        assert store.get_run(run.id).status is RunStatus.FAILED

    def test_child_runs_point_at_parent(self, store: MetadataStore) -> None:
        exp = store.create_experiment("nest")
        parent = store.create_run(exp.id, "parent")
        child = store.create_run(exp.id, "child", parent_id=parent.id)
        assert store.get_run(child.id).parent_id == parent.id
        assert _search(store, exp.id, f"parent_id = '{parent.id}'") == ["child"]

    def test_deleted_runs_disappear(self, store: MetadataStore) -> None:
        exp = store.create_experiment("del")
        keep = store.create_run(exp.id, "keep")
        gone = store.create_run(exp.id, "gone")
        store.delete_run(gone.id)
        assert _search(store, exp.id, None) == ["keep"]
        with pytest.raises(NotFound, match="keel runs list"):
            store.get_run(gone.id)
        assert store.get_run(keep.id).name == "keep"

    def test_environment_stored_once(self, store: MetadataStore) -> None:
        store.put_environment("d" * 64, {"python": "3.11"})
        store.put_environment("d" * 64, {"python": "3.11"})
        assert store.get_environment("d" * 64) == {"python": "3.11"}
        with pytest.raises(NotFound):
            store.get_environment("e" * 64)

    # params and tags ------------------------------------------------------------

    def test_params_are_immutable(self, store: MetadataStore) -> None:
        exp = store.create_experiment("params")
        run = store.create_run(exp.id, "r")
        store.log_params(run.id, {"C": "0.1", "penalty": "l2"})
        store.log_params(run.id, {"C": "0.1"})  # the same value again is fine
        with pytest.raises(Conflict, match="immutable"):
            store.log_params(run.id, {"C": "1.0", "new": "x"})
        assert store.get_run(run.id).params == {"C": "0.1", "penalty": "l2"}

    def test_tags_overwrite(self, store: MetadataStore) -> None:
        exp = store.create_experiment("tags")
        run = store.create_run(exp.id, "r")
        store.set_tags(run.id, {"stage": "dev"})
        store.set_tags(run.id, {"stage": "prod", "owner": "ada"})
        assert store.get_run(run.id).tags == {"stage": "prod", "owner": "ada"}

    def test_writes_to_unknown_run_are_refused(self, store: MetadataStore) -> None:
        missing = "f" * 32
        with pytest.raises(NotFound):
            store.log_params(missing, {"a": "1"})
        with pytest.raises(NotFound):
            store.set_tags(missing, {"a": "1"})
        with pytest.raises(NotFound) as caught:
            store.log_metrics([(missing, "m", 1.0, 0, 1.0)])
        assert caught.value.details["run_ids"] == [missing]

    # metrics --------------------------------------------------------------------

    def test_metric_history_round_trips_special_values(self, store: MetadataStore) -> None:
        exp = store.create_experiment("metrics")
        run = store.create_run(exp.id, "r")
        values = [0.5, math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324]
        store.log_metrics([(run.id, "m", v, i, 1000.0 + i) for i, v in enumerate(values)])
        series = store.get_metric_history(run.id, "m")
        assert list(series.steps) == list(range(len(values)))
        assert list(series.timestamps) == [1000.0 + i for i in range(len(values))]
        for got, want in zip(series.values, values, strict=True):
            assert (math.isnan(got) and math.isnan(want)) or (
                got == want and math.copysign(1, got) == math.copysign(1, want)
            )

    def test_latest_value_is_highest_step_then_newest(self, store: MetadataStore) -> None:
        exp = store.create_experiment("latest")
        run = store.create_run(exp.id, "r")
        store.log_metrics([(run.id, "loss", 0.9, 5, 10.0), (run.id, "loss", 0.7, 5, 11.0)])
        store.log_metrics([(run.id, "loss", 0.1, 2, 20.0)])  # an older step, logged later
        assert store.get_run(run.id).metrics == {"loss": 0.7}
        store.log_metrics([(run.id, "loss", math.nan, 6, 21.0)])
        assert math.isnan(store.get_run(run.id).metrics["loss"])
        assert len(store.get_metric_history(run.id, "loss").values) == 4

    def test_long_histories_span_chunks(self, store: MetadataStore) -> None:
        exp = store.create_experiment("long")
        run = store.create_run(exp.id, "r")
        n = CHUNK_POINTS * 2 + 17
        store.log_metrics([(run.id, "m", float(i), i, float(i)) for i in range(n)])
        series = store.get_metric_history(run.id, "m")
        assert len(series.values) == n
        assert series.values[n - 1] == float(n - 1)
        assert store.get_run(run.id).metrics["m"] == float(n - 1)

    def test_missing_metric_history_is_not_found(self, store: MetadataStore) -> None:
        exp = store.create_experiment("none")
        run = store.create_run(exp.id, "r")
        with pytest.raises(NotFound, match="no metric 'nope'"):
            store.get_metric_history(run.id, "nope")

    def test_concurrent_metric_writes_lose_nothing(self, store: MetadataStore) -> None:
        exp = store.create_experiment("threads")
        run = store.create_run(exp.id, "r")

        def write(worker: int) -> None:
            for batch in range(10):
                rows = [
                    (run.id, f"w{worker}", float(i), batch * 100 + i, time.time())
                    for i in range(100)
                ]
                store.log_metrics(rows)

        assert _in_threads(write, 4) == []
        for worker in range(4):
            assert len(store.get_metric_history(run.id, f"w{worker}").values) == 1000

    # artifacts ------------------------------------------------------------------

    def test_artifact_names_map_to_digests(self, store: MetadataStore) -> None:
        exp = store.create_experiment("art")
        run = store.create_run(exp.id, "r")
        store.record_artifact(run.id, "plots/roc.png", "a" * 64, 10)
        store.record_artifact(run.id, "model/model.skops", "b" * 64, 20)
        store.record_artifact(run.id, "plots/roc.png", "c" * 64, 11)
        assert [(a.name, a.digest) for a in store.list_artifacts(run.id)] == [
            ("model/model.skops", "b" * 64),
            ("plots/roc.png", "c" * 64),
        ]
        with pytest.raises(NotFound, match="no artifact"):
            store.get_artifact(run.id, "nope.txt")

    # search ---------------------------------------------------------------------

    @pytest.fixture
    def searchable(self, store: MetadataStore) -> str:
        exp = store.create_experiment("search")
        other = store.create_experiment("other")
        store.create_run(other.id, "elsewhere", tags_={"team": "risk"})
        rows = [
            ("a", {"model": "lr", "C": "0.1"}, {"auc": 0.91, "loss": 0.2}, {"team": "risk"}),
            ("b", {"model": "rf"}, {"auc": 0.85}, {"team": "Risk"}),
            ("c", {"model": "lr", "C": "1.0"}, {"auc": 0.70, "loss": 0.5}, {}),
            ("d", {"model": "gb"}, {}, {"team": "growth"}),
        ]
        for i, (name, p, m, t) in enumerate(rows):
            run = store.create_run(exp.id, name, tags_=t, start_time=1000.0 + i)
            store.log_params(run.id, p)
            store.log_metrics([(run.id, k, v, 0, 1.0) for k, v in m.items()])
            if name == "d":
                store.set_run_status(run.id, RunStatus.FAILED, 2000.0)
        return exp.id

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            (None, ["d", "c", "b", "a"]),
            ("metrics.auc > 0.8", ["b", "a"]),
            ("metrics.auc > 0.8 and params.model = 'lr'", ["a"]),
            ("params.model = 'rf' or metrics.loss >= 0.5", ["c", "b"]),
            ("not params.model = 'lr'", ["d", "b"]),
            ("params.model IN ('gb', 'rf')", ["d", "b"]),
            ("params.model NOT IN ('gb', 'rf')", ["c", "a"]),
            ("tags.team = 'risk'", ["a"]),
            ("tags.team LIKE 'R%'", ["b"]),
            ("tags.team ILIKE 'r%'", ["b", "a"]),
            ("tags.team IS NULL", ["c"]),
            ("metrics.loss IS NOT NULL", ["c", "a"]),
            ("params.C != '0.1'", ["c"]),
            ("status = 'FAILED'", ["d"]),
            ("run_name LIKE '%'", ["d", "c", "b", "a"]),
            ("start_time >= 1002", ["d", "c"]),
            ("params.model = 'lr'' OR 1=1 --'", []),
            ("tags.`no such key` = 'x'", []),
        ],
    )
    def test_filters(
        self, store: MetadataStore, searchable: str, text: str | None, expected: list[str]
    ) -> None:
        assert _search(store, searchable, text) == expected

    def test_order_by_metric_puts_missing_last(self, store: MetadataStore, searchable: str) -> None:
        assert _search(store, searchable, None, order_by=["metrics.auc DESC"]) == [
            "a",
            "b",
            "c",
            "d",
        ]
        assert _search(store, searchable, None, order_by=["metrics.auc"]) == ["c", "b", "a", "d"]
        assert _search(store, searchable, None, order_by=["params.model", "run_name DESC"]) == [
            "d",
            "c",
            "a",
            "b",
        ]

    def test_paging(self, store: MetadataStore, searchable: str) -> None:
        first = _search(store, searchable, None, max_results=2)
        second = _search(store, searchable, None, max_results=2, offset=2)
        assert first + second == ["d", "c", "b", "a"]
        with pytest.raises(InvalidArgument, match="max_results"):
            _search(store, searchable, None, max_results=0)

    def test_filtered_pages_keep_order_and_values(
        self, store: MetadataStore, searchable: str
    ) -> None:
        # A filtered search pages ids first and reads only the page's rows: every page
        # must hold the same runs, in the same order, with their values.
        text, order = "run_name != 'x'", ["metrics.auc DESC"]
        whole = _search(store, searchable, text, order_by=order)
        assert whole == ["a", "b", "c", "d"]
        pages = [
            _search(store, searchable, text, order_by=order, max_results=1, offset=i)
            for i in range(5)
        ]
        assert pages == [["a"], ["b"], ["c"], ["d"], []]
        newest = _search(store, searchable, "params.model != 'gb'", max_results=2, offset=1)
        assert newest == ["b", "a"]
        (run,) = store.search_runs(
            [searchable], parse_filter("metrics.auc < 0.8"), parse_order_by(["params.C"])
        )
        assert (run.name, run.params, run.metrics) == (
            "c",
            {"model": "lr", "C": "1.0"},
            {
                "auc": 0.70,
                "loss": 0.5,
            },
        )

    def test_search_across_all_experiments(self, store: MetadataStore, searchable: str) -> None:
        found = store.search_runs([], parse_filter("tags.team = 'risk'"), ())
        assert sorted(r.name for r in found) == ["a", "elsewhere"]

    def test_search_results_carry_values(self, store: MetadataStore, searchable: str) -> None:
        (run,) = store.search_runs([searchable], parse_filter("run_name = 'a'"), ())
        assert run.params == {"model": "lr", "C": "0.1"}
        assert run.metrics == {"auc": 0.91, "loss": 0.2}
        assert run.tags == {"team": "risk"}

    # run summaries (docs/adr/0018-run-summary-column.md) -------------------------

    def test_summary_follows_every_kind_of_write(self, store: MetadataStore) -> None:
        exp = store.create_experiment("summary")
        run = store.create_run(exp.id, "r", tags_={"team": "risk", "stage": "dev"})
        assert_summaries_match_tables(store, [run.id])
        store.log_params(run.id, {"C": "0.1", "penalty": "l2"})
        store.log_params(run.id, {"C": "0.1", "solver": "lbfgs"})
        with pytest.raises(Conflict):
            store.log_params(run.id, {"C": "9", "never": "stored"})
        store.set_tags(run.id, {"stage": "prod", "owner": "ada"})
        store.delete_tags(run.id, ["team"])
        with pytest.raises(NotFound, match="no tag 'gone'"):
            store.delete_tags(run.id, ["owner", "gone"])
        special = [math.nan, math.inf, -math.inf, -0.0, 5e-324]
        store.log_metrics([(run.id, f"s{i}", v, 0, 1.0) for i, v in enumerate(special)])
        store.log_metrics([(run.id, "loss", 0.5, 3, 10.0), (run.id, "loss", 0.4, 3, 11.0)])
        store.log_metrics([(run.id, "loss", 0.1, 1, 20.0)])  # an older step: not the latest
        assert_summaries_match_tables(store, [run.id])
        got = store.get_run(run.id)
        assert got.params == {"C": "0.1", "penalty": "l2", "solver": "lbfgs"}
        assert got.tags == {"stage": "prod", "owner": "ada"}
        assert got.metrics["loss"] == 0.4
        assert _same(tuple(got.metrics[f"s{i}"] for i in range(len(special))), tuple(special))
        (found,) = store.search_runs([exp.id], parse_filter("params.C = '0.1'"), ())
        assert _same((found.params, found.metrics, found.tags), (got.params, got.metrics, got.tags))

    def test_summary_of_a_metric_batch_over_many_runs(self, store: MetadataStore) -> None:
        exp = store.create_experiment("batch")
        ids = [store.create_run(exp.id, f"r{i}").id for i in range(25)]
        store.log_params(ids[0], {"kept": "yes"})
        rows = [
            (run_id, f"m{k}", float(i * k), step, float(step))
            for step in range(3)
            for i, run_id in enumerate(reversed(ids))
            for k in range(4)
        ]
        store.log_metrics(rows)
        assert_summaries_match_tables(store, ids)
        assert store.get_run(ids[0]).params == {"kept": "yes"}
        assert store.get_run(ids[1]).metrics == {f"m{k}": float(23 * k) for k in range(4)}

    def test_a_refused_metric_batch_leaves_summaries_alone(self, store: MetadataStore) -> None:
        exp = store.create_experiment("refused")
        run = store.create_run(exp.id, "r")
        store.log_metrics([(run.id, "m", 1.0, 0, 1.0)])
        with pytest.raises(NotFound):
            store.log_metrics([(run.id, "m", 2.0, 1, 2.0), ("f" * 32, "m", 3.0, 1, 2.0)])
        assert store.get_run(run.id).metrics == {"m": 1.0}
        assert_summaries_match_tables(store, [run.id])

    def test_deleted_runs_keep_their_summary(self, store: MetadataStore) -> None:
        exp = store.create_experiment("deleted")
        run = store.create_run(exp.id, "r", tags_={"t": "1"})
        store.log_params(run.id, {"p": "1"})
        store.delete_run(run.id)
        assert store.search_runs([exp.id], None, ()) == []
        (found,) = store.search_runs([exp.id], None, (), include_deleted=True)
        assert (found.params, found.tags) == ({"p": "1"}, {"t": "1"})
        assert_summaries_match_tables(store, [run.id])

    def test_concurrent_writers_keep_the_summary_whole(self, store: MetadataStore) -> None:
        exp = store.create_experiment("racing")
        run = store.create_run(exp.id, "r")

        def write(worker: int) -> None:
            for i in range(15):
                if worker == 0:
                    store.log_params(run.id, {f"p{i}": str(i)})
                elif worker == 1:
                    store.set_tags(run.id, {f"t{i % 5}": str(i)})
                else:
                    store.log_metrics([(run.id, f"w{worker}", float(i), i, time.time())])

        assert _in_threads(write, 4) == []
        assert_summaries_match_tables(store, [run.id])
        got = store.get_run(run.id)
        assert got.params == {f"p{i}": str(i) for i in range(15)}
        assert got.tags == {f"t{k}": str(10 + k) for k in range(5)}
        assert got.metrics == {"w2": 14.0, "w3": 14.0}

    def test_search_rows_carry_the_summary(self, store: MetadataStore, searchable: str) -> None:
        rows = store.search_run_rows([searchable], parse_filter("run_name = 'a'"), ())
        (row,) = rows
        assert row[0] == store.search_runs([searchable], parse_filter("run_name = 'a'"), ())[0].id
        assert summary_parts(row[-1]) == (
            {"model": "lr", "C": "0.1"},
            {"auc": 0.91, "loss": 0.2},
            {"team": "risk"},
        )

    def test_the_migration_matches_the_tracking_schema(self, store: MetadataStore) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.migration import MigrationContext

        from keel.stores.metadata._schema import metadata

        tracking = {"runs", "params", "tags", "metrics_latest", "metric_chunks", "experiments"}
        with store.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), metadata)
        assert [change for change in diff if _tables_named(change) & tracking] == []
