"""Batch prediction over files: chunking, per-row rejects, formats, atomic output."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from keel.errors import AlreadyExists, InvalidArgument, InvalidInput, KeelError
from keel.serving import ModelLoader, ServedModel
from keel.serving._batch import BatchSummary, check_paths, predict_file
from keel.serving._batch_check import FLOAT_PATTERN, ChunkChecker, Reason

R = Reason


# models -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def numeric_fit() -> tuple[Any, pd.DataFrame]:
    """LogisticRegression on two float columns and an int column (the fast matrix path)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": rng.normal(size=300), "b": rng.normal(size=300), "n": rng.integers(0, 5, 300)}
    )
    y = (frame["a"] + frame["b"] + 0.3 * frame["n"] > 0.5).astype(int)
    return LogisticRegression().fit(frame, y), frame


@pytest.fixture(scope="module")
def mixed_fit() -> tuple[Any, pd.DataFrame]:
    """A pipeline over every logical type; ``score`` is nullable, the rest are not."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(1)
    n = 200
    frame = pd.DataFrame(
        {
            "amount": rng.normal(10, 3, n),
            "count": rng.integers(0, 9, n),
            "flag": rng.random(n) > 0.5,
            "name": [f"c{i}" for i in range(n)],
            "region": pd.Categorical(rng.choice(["north", "south"], n)),
            "when": pd.date_range("2024-01-01", periods=n, freq="h"),
            "score": rng.random(n),
        }
    )
    frame.loc[0, "score"] = np.nan
    y = ((frame["amount"] > 10) ^ frame["flag"]).astype(int)
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["region"]),
            ("num", "passthrough", ["amount", "count", "flag"]),
            ("imp", SimpleImputer(), ["score"]),
        ],
        remainder="drop",
    )
    model = Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=1000))]).fit(frame, y)
    return model, frame


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """Where a test's files go (``tmp_path`` also holds the KEEL_HOME)."""
    path = tmp_path / "files"
    path.mkdir()
    return path


@pytest.fixture
def context(keel_home: Path) -> Any:
    from keel.context import get_context

    return get_context()


def _served(context: Any, fitted: tuple[Any, pd.DataFrame], name: str | None = None) -> ServedModel:
    model, frame = fitted
    run = context.tracking.create_run("batch")
    info = context.models.log_model(run.id, model, input_example=frame.iloc[:5])
    context.tracking.end_run(run.id)
    uri = info.uri
    if name is not None:
        uri = context.registry.register_model(info.uri, name).uri
    return ModelLoader(context.registry, context.models, max_rows=1000).load(uri)


@pytest.fixture
def numeric(context: Any, numeric_fit: tuple[Any, pd.DataFrame]) -> ServedModel:
    return _served(context, numeric_fit)


@pytest.fixture
def mixed(context: Any, mixed_fit: tuple[Any, pd.DataFrame]) -> ServedModel:
    return _served(context, mixed_fit)


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pacsv.read_csv(path).to_pandas()
    return pq.read_table(path).to_pandas()


def _rejects(path: Path) -> list[tuple[int, str, str, str | None]]:
    if path.suffix == ".csv":
        options = pacsv.ConvertOptions(
            column_types={"value": pa.string()},
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,  # null is written unquoted, "" quoted
        )
        table = pacsv.read_csv(path, convert_options=options)
    else:
        table = pq.read_table(path)
    return [(r["row"], r["column"], r["reason"], r["value"]) for r in table.to_pylist()]


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# chunking -----------------------------------------------------------------------------


@pytest.mark.parametrize("chunk_size", [1, 7, 250])
def test_chunked_scoring_equals_one_shot(
    numeric: ServedModel, numeric_fit: tuple[Any, pd.DataFrame], files: Path, chunk_size: int
) -> None:
    model, frame = numeric_fit
    source = files / "in.parquet"
    frame.to_parquet(source, index=False, row_group_size=100)
    one = predict_file(numeric, source, files / "one.parquet", chunk_size=10_000)
    many = predict_file(numeric, source, files / "many.parquet", chunk_size=chunk_size)
    assert (one.rows_read, one.rows_scored, one.rows_rejected) == (300, 300, 0)
    assert (many.rows_read, many.rows_scored, many.rows_rejected) == (300, 300, 0)
    expected = pq.read_table(files / "one.parquet")
    chunked = pq.read_table(files / "many.parquet")
    assert chunked.schema.equals(expected.schema)
    # BLAS may take another kernel for a one-row chunk: probabilities agree to rounding.
    probabilities = ["proba_0", "proba_1"]
    exact = [name for name in expected.column_names if name not in probabilities]
    assert chunked.select(exact).equals(expected.select(exact))
    np.testing.assert_allclose(
        chunked.select(probabilities).to_pandas(),
        expected.select(probabilities).to_pandas(),
        rtol=1e-12,
        atol=1e-15,
    )
    out = expected.to_pandas()
    assert list(out.columns) == ["row", "a", "b", "n", "prediction", "proba_0", "proba_1"]
    assert out["row"].tolist() == list(range(300))
    assert (out["prediction"].to_numpy() == model.predict(frame)).all()
    np.testing.assert_allclose(out[["proba_0", "proba_1"]], model.predict_proba(frame))
    pd.testing.assert_frame_equal(out[["a", "b", "n"]], frame)


def test_mixed_types_chunked_equal_one_shot_and_the_model(
    mixed: ServedModel, mixed_fit: tuple[Any, pd.DataFrame], files: Path
) -> None:
    model, frame = mixed_fit
    source = files / "in.csv"
    frame.to_csv(source, index=False)
    predict_file(mixed, source, files / "one.parquet")
    predict_file(mixed, source, files / "many.parquet", chunk_size=3)
    one = pq.read_table(files / "one.parquet")
    assert pq.read_table(files / "many.parquet").equals(one)
    out = one.to_pandas()
    np.testing.assert_allclose(out[["proba_0", "proba_1"]], model.predict_proba(frame))
    # signature columns hold what the model saw, parsed from the CSV text
    assert one.schema.field("amount").type == pa.float64()
    assert one.schema.field("count").type == pa.int64()
    assert one.schema.field("flag").type == pa.bool_()
    assert one.schema.field("when").type == pa.timestamp("us")
    assert out["when"].tolist() == frame["when"].tolist()
    assert out["score"].isna().tolist() == frame["score"].isna().tolist()


@pytest.mark.parametrize(("source_suffix", "output_suffix"), [
    (".csv", ".csv"), (".csv", ".parquet"), (".parquet", ".csv"), (".parquet", ".parquet"),
])  # fmt: skip
def test_csv_and_parquet_in_and_out(
    numeric: ServedModel,
    numeric_fit: tuple[Any, pd.DataFrame],
    files: Path,
    source_suffix: str,
    output_suffix: str,
) -> None:
    model, frame = numeric_fit
    source = files / f"in{source_suffix}"
    with_id = frame.assign(customer=[f"id-{i:03d}" for i in range(len(frame))])
    if source_suffix == ".csv":
        with_id.to_csv(source, index=False)
    else:
        with_id.to_parquet(source, index=False)
    output, rejects = files / f"out{output_suffix}", files / f"rejects{output_suffix}"
    summary = predict_file(numeric, source, output, rejects=rejects, chunk_size=64)
    assert summary.complete
    assert summary.unused_columns == ("customer",)
    out = _read(output)
    assert out["customer"].tolist() == with_id["customer"].tolist()
    np.testing.assert_allclose(out["proba_1"], model.predict_proba(frame)[:, 1])
    np.testing.assert_allclose(out["a"], frame["a"])
    assert _rejects(rejects) == []
    assert _files(files) == sorted([source.name, output.name, rejects.name])


def test_id_columns_choose_what_is_copied(
    numeric: ServedModel, numeric_fit: tuple[Any, pd.DataFrame], files: Path
) -> None:
    _, frame = numeric_fit
    source = files / "in.parquet"
    frame.assign(customer=range(300)).to_parquet(source, index=False)
    predict_file(numeric, source, files / "out.parquet", id_columns=["customer"])
    out = pq.read_table(files / "out.parquet")
    assert out.column_names == ["row", "customer", "prediction", "proba_0", "proba_1"]
    with pytest.raises(InvalidArgument, match="no column 'client' to copy"):
        predict_file(numeric, source, files / "x.parquet", id_columns=["client"])


def test_an_input_column_named_like_an_output_column_is_refused(
    numeric: ServedModel, numeric_fit: tuple[Any, pd.DataFrame], files: Path
) -> None:
    _, frame = numeric_fit
    source = files / "in.parquet"
    frame.assign(prediction=1).to_parquet(source, index=False)
    with pytest.raises(InvalidArgument, match=r"has a column 'prediction'.*--id-column"):
        predict_file(numeric, source, files / "out.parquet")
    predict_file(numeric, source, files / "out.parquet", id_columns=["a"])
    assert _files(files) == ["in.parquet", "out.parquet"]


# rejects ------------------------------------------------------------------------------

MIXED_CSV = textwrap.dedent(
    """\
    amount,count,flag,name,region,when,score
    1.5,3,true,x,north,2024-01-01T10:00:00,0.5
    ,3,true,x,north,2024-01-01,0.5
    abc,3,true,x,north,2024-01-01,0.5
    inf,3,true,x,north,2024-01-01,0.5
    1,2.5,true,x,north,2024-01-01,0.5
    1,99999999999999999999,true,x,north,2024-01-01,0.5
    1,x1,true,x,north,2024-01-01,0.5
    1,3,yes,x,north,2024-01-01,0.5
    1,3,true,x,north,not a date,0.5
    1,3,true,,east,2024-01-01,0.5
     2.5 ,3.0,FALSE,x,south,2024-01-01 10:00:00+02:00,
    NAN,1e3,true,x,north,2024-01-01,NAN
    abc,3,maybe,x,north,2024-01-01,0.5
    1,-9223372036854775808,true,x,north,2024-01-01,0.5
    1,+9223372036854775808,true,x,north,2024-01-01,0.5
    1,1e30,true,x,north,2024-01-01,inf
    """
)
MIXED_REJECTS = [
    (1, "amount", R.MISSING, None),
    (2, "amount", R.NOT_NUMBER, "abc"),
    (3, "amount", R.INFINITE, "inf"),
    (4, "count", R.NOT_WHOLE, "2.5"),
    (5, "count", R.BEYOND_INT64, "99999999999999999999"),
    (6, "count", R.NOT_INTEGER, "x1"),
    (7, "flag", R.NOT_BOOL, "yes"),
    (8, "when", R.NOT_DATETIME, "not a date"),
    (9, "name", R.MISSING, None),
    (11, "amount", R.NAN, "NAN"),
    (12, "amount", R.NOT_NUMBER, "abc"),
    (12, "flag", R.NOT_BOOL, "maybe"),
    (14, "count", R.BEYOND_INT64, "+9223372036854775808"),
    (15, "count", R.BEYOND_INT64, "1e30"),
    (15, "score", R.INFINITE, "inf"),
]


@pytest.mark.parametrize("chunk_size", [4, 1000])
@pytest.mark.parametrize("rejects_name", ["rejects.parquet", "rejects.csv"])
def test_every_reject_reason_with_its_row_from_csv(
    mixed: ServedModel, files: Path, chunk_size: int, rejects_name: str
) -> None:
    source = files / "in.csv"
    source.write_text(MIXED_CSV)
    rejects = files / rejects_name
    summary = predict_file(
        mixed, source, files / "out.parquet", rejects=rejects, chunk_size=chunk_size
    )
    assert _rejects(rejects) == MIXED_REJECTS
    rejected_rows = sorted({r[0] for r in MIXED_REJECTS})
    assert (summary.rows_read, summary.rows_rejected) == (16, len(rejected_rows))
    assert (summary.rows_scored, summary.problems) == (16 - len(rejected_rows), 15)
    assert ("amount", R.NOT_NUMBER, 2) in summary.reasons
    out = pq.read_table(files / "out.parquet").to_pandas()
    assert out["row"].tolist() == [0, 10, 13]
    scored = out.set_index("row")
    # spaces trimmed, whole floats taken as ints, any case of true/false, missing
    # values where nullable, offsets converted to naive UTC
    assert scored.loc[10, "amount"] == 2.5
    assert scored.loc[10, "count"] == 3
    assert not scored.loc[10, "flag"]
    assert np.isnan(scored.loc[10, "score"])
    assert scored.loc[10, "when"] == pd.Timestamp("2024-01-01 08:00:00")
    assert scored.loc[13, "count"] == -(2**63)
    assert scored["region"].tolist() == ["north", "south", "north"]


def test_unseen_categories_are_not_rejected(mixed: ServedModel, files: Path) -> None:
    source = files / "in.csv"
    source.write_text(MIXED_CSV.splitlines()[0] + "\n1,3,true,x,east,2024-01-01,0.5\n")
    summary = predict_file(mixed, source, files / "out.csv")
    assert summary.complete
    assert _read(files / "out.csv")["region"].tolist() == ["east"]


def test_every_reject_reason_with_its_row_from_parquet(mixed: ServedModel, files: Path) -> None:
    table = pa.table(
        {
            "amount": pa.array([1.0, None, float("nan"), float("inf"), 1.0, 1.0, 1.0, 1.0]),
            "count": pa.array([3.0, 3.0, 3.0, 3.0, 2.5, 1e30, float("nan"), 4.0]),
            "flag": pa.array([True, True, True, True, True, True, True, None]),
            "name": pa.array(["x"] * 8),
            "region": pa.array(["north"] * 8).dictionary_encode(),
            "when": pa.array(["2024-01-01", *["2024-01-02"] * 6, "2024-02-30"]),
            "score": pa.array([0.5, None, float("nan"), 0.5, 0.5, 0.5, 0.5, 0.5]),
        }
    )
    source = files / "in.parquet"
    pq.write_table(table, source)
    rejects = files / "rejects.parquet"
    summary = predict_file(mixed, source, files / "out.parquet", rejects=rejects)
    assert _rejects(rejects) == [
        (1, "amount", R.MISSING, None),
        (2, "amount", R.NAN, "nan"),
        (3, "amount", R.INFINITE, "inf"),
        (4, "count", R.NOT_WHOLE, "2.5"),
        (5, "count", R.BEYOND_INT64, "1e+30"),
        (6, "count", R.NAN, "nan"),
        (7, "flag", R.MISSING, None),
        (7, "when", R.NOT_DATETIME, "2024-02-30"),
    ]
    assert summary.rows_scored == 1
    assert pq.read_table(files / "out.parquet").column("row").to_pylist() == [0]


def test_uint64_beyond_int64_is_rejected(context: Any, files: Path) -> None:
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"k": np.arange(10)})
    served = _served(context, (LinearRegression().fit(frame, np.arange(10) * 2.0), frame))
    source = files / "in.parquet"
    pq.write_table(pa.table({"k": pa.array([1, 2**63, 2**64 - 1, 3], pa.uint64())}), source)
    rejects = files / "rejects.csv"
    summary = predict_file(served, source, files / "out.parquet", rejects=rejects)
    assert [r[:3] for r in _rejects(rejects)] == [
        (1, "k", R.BEYOND_INT64),
        (2, "k", R.BEYOND_INT64),
    ]
    out = pq.read_table(files / "out.parquet")
    assert out.column_names == ["row", "k", "prediction"]  # a regressor: no probabilities
    np.testing.assert_allclose(out.column("prediction").to_numpy(), [2.0, 6.0])
    assert summary.rows_scored == 2


def test_nullable_columns_take_missing_values(mixed: ServedModel, files: Path) -> None:
    source = files / "in.csv"
    source.write_text(MIXED_CSV.splitlines()[0] + "\n1,3,true,x,north,2024-01-01,NA\n")
    assert predict_file(mixed, source, files / "out.parquet").complete


def test_every_row_rejected_still_writes_an_empty_output(mixed: ServedModel, files: Path) -> None:
    source = files / "in.csv"
    source.write_text(MIXED_CSV.splitlines()[0] + "\n,3,true,x,north,2024-01-01,0.5\n")
    summary = predict_file(mixed, source, files / "out.parquet")
    assert (summary.rows_scored, summary.rows_rejected, summary.complete) == (0, 1, False)
    out = pq.read_table(files / "out.parquet")
    assert out.num_rows == 0
    assert out.column_names[0] == "row"
    assert out.column_names[-2:] == ["proba_0", "proba_1"]


def test_an_empty_input_writes_an_empty_output(numeric: ServedModel, files: Path) -> None:
    source = files / "in.csv"
    source.write_text("a,b,n\n")
    summary = predict_file(numeric, source, files / "out.csv", rejects=files / "r.csv")
    assert (summary.rows_read, summary.complete) == (0, True)
    assert (files / "out.csv").read_text().startswith('"row","a","b","n","prediction"')
    assert _rejects(files / "r.csv") == []


# whole-file problems ------------------------------------------------------------------


def test_a_missing_column_fails_the_file_with_one_message(
    numeric: ServedModel, files: Path
) -> None:
    source = files / "in.csv"
    source.write_text("a,B,n\n1,2,3\n" * 1)
    with pytest.raises(InvalidInput, match=r"no column 'b'.*add it.*the file has 'B'") as caught:
        predict_file(numeric, source, files / "out.parquet", rejects=files / "r.parquet")
    assert caught.value.details["problems"] == [
        {"row": None, "column": "b", "reason": "missing column: the model needs it"}
    ]
    assert _files(files) == ["in.csv"]


def test_a_parquet_column_of_the_wrong_type_fails_the_file(
    numeric: ServedModel, files: Path
) -> None:
    source = files / "in.parquet"
    pq.write_table(pa.table({"a": ["1.5"], "b": [True], "n": [1]}), source)
    with pytest.raises(InvalidInput) as caught:
        predict_file(numeric, source, files / "out.parquet")
    message = caught.value.message
    assert "column 'a' is string in the file but the model takes float" in message
    assert "column 'b' is bool in the file but the model takes float" in message
    assert _files(files) == ["in.parquet"]


def test_a_model_without_signature_is_refused(context: Any, files: Path) -> None:
    from sklearn.linear_model import LinearRegression

    run = context.tracking.create_run("batch")
    info = context.models.log_model(run.id, LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]))
    served = ModelLoader(context.registry, context.models, max_rows=10).load(info.uri)
    (files / "in.csv").write_text("f0\n1\n")
    with pytest.raises(InvalidArgument, match=r"without a signature.*input_example"):
        predict_file(served, files / "in.csv", files / "out.csv")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("in.txt", b"a,b,n\n", "cannot tell whether .* is CSV or Parquet"),
        ("in.parquet", b"PAR1 not really", "not a readable Parquet file"),
        ("in.csv", b"", "is empty: it has no header row"),
        ("in.csv", b"a,b,n\n1,2,3\n1,2\n", "could not be read as CSV"),
    ],
)
def test_unreadable_inputs_name_the_fix(
    numeric: ServedModel, files: Path, name: str, content: bytes, message: str
) -> None:
    (files / name).write_bytes(content)
    with pytest.raises(InvalidArgument, match=message):
        predict_file(numeric, files / name, files / "out.parquet", chunk_size=1)
    assert _files(files) == [name]
    with pytest.raises(InvalidArgument, match="does not exist"):
        predict_file(numeric, files / "nope.csv", files / "out.parquet")


def test_a_column_csv_cannot_hold_is_a_clear_error(
    numeric: ServedModel, numeric_fit: tuple[Any, pd.DataFrame], files: Path
) -> None:
    _, frame = numeric_fit
    table = pa.Table.from_pandas(frame, preserve_index=False)
    pq.write_table(table.append_column("tags", pa.array([["x"]] * len(frame))), files / "in.pq")
    with pytest.raises(InvalidArgument, match=r"cannot write .*out\.csv.*write Parquet instead"):
        predict_file(numeric, files / "in.pq", files / "out.csv")
    assert _files(files) == ["in.pq"]
    predict_file(numeric, files / "in.pq", files / "out.parquet")
    assert pq.read_table(files / "out.parquet").column("tags").to_pylist()[:1] == [["x"]]


# atomic output ------------------------------------------------------------------------


def test_a_failure_midway_leaves_no_output(
    numeric: ServedModel,
    numeric_fit: tuple[Any, pd.DataFrame],
    files: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, frame = numeric_fit
    source = files / "in.parquet"
    frame.to_parquet(source, index=False)
    (files / "out.parquet").write_bytes(b"previous")
    calls = []
    real = numeric.predict_many

    def flaky(batch: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("out of memory")
        return real(batch)

    monkeypatch.setattr(numeric, "predict_many", flaky)
    with pytest.raises(KeelError, match=r"failed on rows 100-149 .*RuntimeError: out of memory"):
        predict_file(
            numeric, source, files / "out.parquet", rejects=files / "r.csv",
            chunk_size=50, force=True,
        )  # fmt: skip
    assert _files(files) == ["in.parquet", "out.parquet"]
    assert (files / "out.parquet").read_bytes() == b"previous"


def test_existing_files_are_replaced_only_with_force(
    numeric: ServedModel, numeric_fit: tuple[Any, pd.DataFrame], files: Path
) -> None:
    _, frame = numeric_fit
    source = files / "in.csv"
    frame.to_csv(source, index=False)
    output, rejects = files / "out.csv", files / "rejects.parquet"
    output.write_text("old")
    with pytest.raises(AlreadyExists, match=r"out\.csv' already exists; pass --force"):
        predict_file(numeric, source, output)
    rejects.write_text("old")
    with pytest.raises(AlreadyExists, match=r"rejects\.parquet' already exists"):
        predict_file(numeric, source, files / "new.csv", rejects=rejects)
    assert _files(files) == ["in.csv", "out.csv", "rejects.parquet"]
    summary = predict_file(numeric, source, output, rejects=rejects, force=True)
    assert summary.rows_scored == 300
    assert len(_read(output)) == 300
    assert _rejects(rejects) == []


@pytest.mark.parametrize(
    ("output", "rejects", "message"),
    [
        ("in.csv", None, "the output file .* is also the input file"),
        ("out.csv", "out.csv", "the rejects file .* is also the output file"),
        ("out.json", None, "must end in .parquet or .csv"),
        ("out.csv", "r.txt", "rejects file .* must end in .parquet or .csv"),
        ("missing/out.csv", None, "directory .*missing' does not exist"),
        (".", None, "is a directory"),
    ],
)
def test_paths_are_checked_first(
    files: Path, output: str, rejects: str | None, message: str
) -> None:
    (files / "in.csv").write_text("a\n1\n")
    with pytest.raises(InvalidArgument, match=message):
        check_paths(
            files / "in.csv",
            files / output,
            None if rejects is None else files / rejects,
            force=True,
        )


def test_progress_reports_rows_done_and_the_known_total(
    numeric: ServedModel, numeric_fit: tuple[Any, pd.DataFrame], files: Path
) -> None:
    _, frame = numeric_fit
    frame.to_parquet(files / "in.parquet", index=False)
    frame.to_csv(files / "in.csv", index=False)
    seen: list[tuple[int, int | None]] = []
    predict_file(
        numeric, files / "in.parquet", files / "a.csv", chunk_size=128,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen == [(0, 300), (128, 300), (256, 300), (300, 300)]
    seen.clear()
    predict_file(
        numeric, files / "in.csv", files / "b.csv", chunk_size=200,
        progress=lambda done, total: seen.append((done, total)),
    )  # fmt: skip
    assert seen == [(0, None), (200, None), (300, None)]


def test_summary_as_json() -> None:
    summary = BatchSummary(
        model="models:/credit/1", source="in.csv", output="out.csv", rejects=None,
        rows_read=10, rows_scored=8, rows_rejected=2, problems=3, seconds=0.5,
        reasons=(("a", R.MISSING, 3),), version=1,
    )  # fmt: skip
    data = summary.to_dict()
    assert data["rows_per_second"] == 20.0
    assert data["version"] == 1
    assert data["reasons"] == [{"column": "a", "reason": R.MISSING, "cells": 3}]
    assert not summary.complete


# exit codes (the CLI in-process) ------------------------------------------------------


def test_cli_exit_codes(context: Any, numeric_fit: tuple[Any, pd.DataFrame], files: Path) -> None:
    from keel.cli._app import app

    _served(context, numeric_fit, name="credit")
    _, frame = numeric_fit
    good, bad = files / "good.csv", files / "bad.csv"
    frame.to_csv(good, index=False)
    frame.assign(a=frame["a"].astype(object).where(frame.index != 4, "x")).to_csv(bad, index=False)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(app, ["predict", "models:/credit/1", *args])

    done = run(str(good), "-o", str(files / "a.parquet"), "--json")
    assert done.exit_code == 0, done.output
    assert '"rows_scored": 300' in done.output
    done = run(str(bad), "-o", str(files / "b.parquet"), "--rejects", str(files / "r.csv"))
    assert done.exit_code == 2, done.output
    assert "scored 299 of 300 rows" in done.output
    assert "'a' is not a number: 1 row" in done.output
    assert _rejects(files / "r.csv") == [(4, "a", R.NOT_NUMBER, "x")]
    done = run(str(good), "-o", str(files / "a.parquet"))
    assert done.exit_code == 1
    assert "already exists; pass --force" in done.output
    done = runner.invoke(app, ["predict", "models:/nope/1", str(good), "-o", "c.parquet"])
    assert done.exit_code == 1
    assert "no registered model 'nope'" in done.output


# parsing text, checked against pyarrow -------------------------------------------------

_NUMBERISH = st.text(alphabet="0123456789+-.eEinfatyINF ", max_size=12)


@settings(max_examples=400, deadline=None)
@given(_NUMBERISH)
def test_the_float_pattern_is_what_pyarrow_parses(text: str) -> None:
    array = pa.array([text])
    try:
        array.cast(pa.float64())
        parses = True
    except pa.ArrowInvalid:
        parses = False
    matches = pc.match_substring_regex(array, FLOAT_PATTERN, ignore_case=True)[0].as_py()
    assert matches == parses


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.integers(min_value=-(2**64), max_value=2**64),
        st.integers(min_value=2**63 - 3, max_value=2**63 + 3),
        st.integers(min_value=-(2**63) - 3, max_value=-(2**63) + 3),
    ),
    st.sampled_from(["", "+", "00"]),
)
def test_integer_text_is_exact_within_int64(value: int, prefix: str) -> None:
    from keel.core._models import ColumnSpec, ModelSignature

    sign = "-" if value < 0 else prefix.replace("00", "")
    text = f"{sign}{'00' if prefix == '00' else ''}{abs(value)}"
    checker = ChunkChecker(ModelSignature((ColumnSpec("k", "int"),)), text=True)
    chunk = checker.check(pa.table({"k": pa.array([text])}))
    if -(2**63) <= value < 2**63:
        assert chunk.all_valid
        assert chunk.columns["k"].to_pylist() == [value]
    else:
        assert [(p.reason, p.values.to_pylist()) for p in chunk.problems] == [
            (R.BEYOND_INT64, [text])
        ]
