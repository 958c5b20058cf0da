"""Leakage between the splits of a dataset: shared rows, shared groups, target proxies.

A split leaks when the evaluation rows are not new to the model: the same row (or the
same entity) sits on both sides, or a single feature carries the label itself. Each
check is vectorised so a million rows take about a second; numpy and pandas load on
first use so ``import keel.data`` stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["LeakageFinding", "LeakageReport", "check_leakage", "target_kind"]

Severity = Literal["error", "warning"]
TargetKind = Literal["binary", "multiclass", "regression"]

MAX_EXAMPLES = 5
#: A numeric target with more distinct values than this is treated as continuous.
MAX_CLASSES = 20
#: Numeric features are put in this many quantile bins (edges from the reference split)
#: before a multiclass target encoding.
_MULTICLASS_BINS = 100


@dataclass(frozen=True)
class LeakageFinding:
    """One leak: what kind, where, how many rows or groups, a few examples, and the fix."""

    kind: str
    severity: Severity
    message: str
    columns: tuple[str, ...] = ()
    splits: tuple[str, ...] = ()
    count: int = 0
    examples: tuple[Any, ...] = ()
    score: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "message": self.message,
            "columns": list(self.columns),
            "splits": list(self.splits),
            "count": self.count,
            "examples": [_plain(e) for e in self.examples],
            "score": self.score,
        }


@dataclass(frozen=True)
class LeakageReport:
    """The findings of :func:`check_leakage`; ``passed`` is false when any is an error.

    ``notes`` says what was skipped and why, so a pass is never silent about a check
    that did not run.
    """

    findings: tuple[LeakageFinding, ...] = ()
    notes: tuple[str, ...] = ()
    rows: Mapping[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    def of_kind(self, kind: str) -> list[LeakageFinding]:
        return [f for f in self.findings if f.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "rows": dict(self.rows),
            "findings": [f.to_dict() for f in self.findings],
            "notes": list(self.notes),
        }


def check_leakage(
    splits: Mapping[str, pd.DataFrame],
    target: str,
    group: str | None = None,
    *,
    feature_auc_threshold: float = 0.99,
) -> LeakageReport:
    """Look for rows, groups and single features that leak ``target`` across ``splits``.

    ``splits`` maps a name to a frame, in order; the one named ``train`` (else the first)
    is the reference a target encoding is learned on. Rows are compared on every column
    but ``target`` and ``group``; the index is ignored.
    """
    _check_inputs(splits, target, group, feature_auc_threshold)
    names = list(splits)
    features = [c for c in splits[names[0]].columns if c != target and c != group]
    findings: list[LeakageFinding] = []
    notes: list[str] = []
    if len(names) < 2:
        notes.append("one split only: no rows or groups can be shared")
    if features:
        findings += _shared_rows(splits, target, features)
    else:
        notes.append("no feature columns: rows and features were not checked")
    if group is not None:
        findings += _shared_groups(splits, group)
    proxies, proxy_notes = _target_proxies(splits, target, features, feature_auc_threshold)
    return LeakageReport(
        findings=tuple(findings + proxies),
        notes=tuple(notes + proxy_notes),
        rows={name: len(frame) for name, frame in splits.items()},
    )


def target_kind(y: pd.Series[Any]) -> TargetKind:
    """``regression`` for a numeric target with over 20 distinct values, else a class kind."""
    from pandas.api import types

    distinct = y.nunique(dropna=True)
    numeric = types.is_numeric_dtype(y.dtype) and not types.is_bool_dtype(y.dtype)
    if numeric and distinct > MAX_CLASSES:
        return "regression"
    return "binary" if distinct <= 2 else "multiclass"


def _check_inputs(
    splits: Mapping[str, pd.DataFrame], target: str, group: str | None, threshold: float
) -> None:
    import pandas as pd

    if not isinstance(splits, Mapping) or not splits:
        raise InvalidArgument(
            "check_leakage needs a mapping of split name to DataFrame, "
            "e.g. {'train': train, 'test': test}"
        )
    if not 0.5 < threshold <= 1.0:
        raise InvalidArgument(
            f"feature_auc_threshold must be in (0.5, 1], got {threshold!r}; 0.99 is usual"
        )
    reference: list[str] | None = None
    for name, frame in splits.items():
        if not isinstance(frame, pd.DataFrame):
            raise InvalidArgument(
                f"split {name!r} is a {type(frame).__name__}, not a pandas DataFrame"
            )
        for role, column in (("target", target), ("group", group)):
            if column is not None and column not in frame.columns:
                raise InvalidArgument(
                    f"split {name!r} has no {role} column {column!r}; "
                    f"its columns are {_listing(frame.columns)}"
                )
        columns = [str(c) for c in frame.columns]
        if reference is None:
            reference = columns
        elif sorted(columns) != sorted(reference):
            differ = sorted(set(columns) ^ set(reference))
            raise InvalidArgument(
                f"split {name!r} does not have the same columns as the first split "
                f"(differing: {_listing(differ)}); compare splits of one frame"
            )


def _shared_rows(
    splits: Mapping[str, pd.DataFrame], target: str, features: list[str]
) -> list[LeakageFinding]:
    import numpy as np
    from pandas.util import hash_pandas_object

    hashed: dict[str, tuple[npt.NDArray[Any], npt.NDArray[Any]]] = {}
    for name, frame in splits.items():
        h_features = hash_pandas_object(frame[features], index=False).to_numpy(np.uint64)
        h_target = hash_pandas_object(frame[target], index=False).to_numpy(np.uint64)
        h_row = (h_features * np.uint64(0x9E3779B97F4A7C15)) ^ h_target
        hashed[name] = (h_features, h_row)
    findings: list[LeakageFinding] = []
    names = list(splits)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            same_features = _isin(hashed[second][0], hashed[first][0])
            if not same_features.any():
                continue
            same_row = same_features & _isin(hashed[second][1], hashed[first][1])
            conflicting = same_features & ~same_row
            labels = splits[second].index
            pair = (first, second)
            if same_row.any():
                count = int(same_row.sum())
                findings.append(
                    LeakageFinding(
                        kind="exact_duplicate",
                        severity="error",
                        splits=pair,
                        count=count,
                        examples=tuple(labels[same_row][:MAX_EXAMPLES]),
                        message=(
                            f"{count} rows of {second!r} also appear in {first!r} with the "
                            f"same {target!r}: the model is scored on rows it learned from; "
                            "drop duplicates before splitting (df.drop_duplicates()) or split "
                            "by an entity id with group="
                        ),
                    )
                )
            if conflicting.any():
                count = int(conflicting.sum())
                findings.append(
                    LeakageFinding(
                        kind="conflicting_duplicate",
                        severity="warning",
                        columns=(target,),
                        splits=pair,
                        count=count,
                        examples=tuple(labels[conflicting][:MAX_EXAMPLES]),
                        message=(
                            f"{count} rows of {second!r} have the same features as rows of "
                            f"{first!r} but a different {target!r}: the same input is "
                            "labelled two ways; check for label noise or a missing feature, "
                            "and deduplicate on the features before splitting"
                        ),
                    )
                )
    return findings


def _isin(values: npt.NDArray[Any], pool: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """``np.isin`` through pandas' hash table, several times faster on uint64 hashes."""
    import pandas as pd

    found: npt.NDArray[Any] = pd.Series(values).isin(pool).to_numpy()
    return found


def _shared_groups(splits: Mapping[str, pd.DataFrame], group: str) -> list[LeakageFinding]:
    import pandas as pd

    uniques = {name: pd.Index(frame[group].dropna().unique()) for name, frame in splits.items()}
    findings: list[LeakageFinding] = []
    names = list(splits)
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            shared = uniques[first].intersection(uniques[second])
            if len(shared) == 0:
                continue
            findings.append(
                LeakageFinding(
                    kind="group_overlap",
                    severity="error",
                    columns=(group,),
                    splits=(first, second),
                    count=len(shared),
                    examples=tuple(shared[:MAX_EXAMPLES]),
                    message=(
                        f"{len(shared)} values of {group!r} are in both {first!r} and "
                        f"{second!r}: one entity is on both sides; split with group={group!r} "
                        "so each group lands in one split"
                    ),
                )
            )
    return findings


def _target_proxies(
    splits: Mapping[str, pd.DataFrame], target: str, features: list[str], threshold: float
) -> tuple[list[LeakageFinding], list[str]]:
    """Single features that predict ``target`` almost perfectly on their own."""
    import numpy as np
    import pandas as pd
    from pandas.api import types

    names = list(splits)
    reference = "train" if "train" in splits else names[0]
    others = [n for n in names if n != reference] or [reference]
    notes: list[str] = []
    if others == [reference]:
        notes.append(
            "target encodings were scored on the rows they were learned from "
            "(one split only), so category columns may look more predictive than they are"
        )
    ref = splits[reference].loc[splits[reference][target].notna()]
    rest = pd.concat([splits[n] for n in others], ignore_index=True)
    rest = rest.loc[rest[target].notna()]
    everything = pd.concat([ref, rest], ignore_index=True) if others != [reference] else ref
    if len(rest) == 0 or everything[target].nunique() < 2:
        notes.append(f"{target!r} has fewer than two values: target proxies were not checked")
        return [], notes
    kind = target_kind(everything[target])
    if kind == "multiclass" and everything[target].nunique() > 50:
        notes.append(f"{target!r} has over 50 classes: target proxies were not checked")
        return [], notes
    positive = _binary(everything[target]) if kind == "binary" else None
    findings: list[LeakageFinding] = []
    for column in features:
        dtype = everything[column].dtype
        numeric = (
            types.is_numeric_dtype(dtype)
            or types.is_datetime64_any_dtype(dtype)
            or types.is_timedelta64_dtype(dtype)
        )
        if positive is not None:
            if numeric:
                score = _auc(_as_float(everything[column]), positive)
                how = "ROC AUC"
            else:
                encoded, y = _encode(ref, rest, column, target, "rate")
                score = _auc(encoded[:, 0], y)
                how = f"ROC AUC of its {target!r} rate per value (learned on {reference!r})"
            flagged = score >= threshold or score <= 1.0 - threshold
        elif kind == "multiclass":
            encoded, y = _encode(ref, rest, column, target, "classes", binned=numeric)
            score = _macro_auc(encoded, y)
            how = f"macro one-vs-rest ROC AUC of its class rates (learned on {reference!r})"
            flagged = score >= threshold
        else:
            if numeric:
                score = _spearman(_as_float(everything[column]), everything[target])
            else:
                encoded, y = _encode(ref, rest, column, target, "mean")
                score = _spearman(encoded[:, 0], pd.Series(y))
            how = "absolute Spearman correlation"
            flagged = abs(score) >= threshold
        if flagged and np.isfinite(score):
            findings.append(
                LeakageFinding(
                    kind="target_proxy",
                    severity="error",
                    columns=(column,),
                    count=1,
                    score=round(float(score), 6),
                    message=(
                        f"feature {column!r} alone predicts {target!r} ({how} = {score:.4f}): "
                        "it is probably derived from the target or recorded after the "
                        "outcome; drop it, or rebuild it from data known at prediction time"
                    ),
                )
            )
    if kind == "multiclass":
        notes.append(
            "multiclass target: a feature is scored by the macro one-vs-rest ROC AUC of "
            f"its per-value class rates (numeric features in {_MULTICLASS_BINS} quantile bins)"
        )
    elif kind == "regression":
        notes.append(
            "continuous target: a feature is scored by its absolute Spearman correlation "
            "with the target (category columns through their mean target per value)"
        )
    return findings, notes


def _as_float(x: pd.Series[Any]) -> npt.NDArray[Any]:
    """Numbers, datetimes and booleans as floats, missing values ranked lowest."""
    import numpy as np
    from pandas.api import types

    if types.is_datetime64_any_dtype(x.dtype) or types.is_timedelta64_dtype(x.dtype):
        values = x.to_numpy(dtype="int64", na_value=np.iinfo(np.int64).min).astype(np.float64)
    else:
        values = x.to_numpy(dtype=np.float64, na_value=np.nan)
    filled: npt.NDArray[Any] = np.where(np.isnan(values), -np.inf, values)
    return filled


def _binary(y: pd.Series[Any]) -> npt.NDArray[Any]:
    import numpy as np

    levels = np.sort(y.unique())
    positive: npt.NDArray[Any] = (y.to_numpy() == levels[-1]).astype(np.int64)
    return positive


def _encode(
    ref: pd.DataFrame,
    rest: pd.DataFrame,
    column: str,
    target: str,
    how: Literal["rate", "mean", "classes"],
    *,
    binned: bool = False,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[Any]]:
    """Per-value target statistics learned on ``ref``, looked up for the rows of ``rest``.

    ``rate`` gives the rate of the positive class, ``mean`` the mean target, ``classes``
    one column per class. Values unseen in ``ref`` get the overall rate.
    Returns the encoded ``rest`` and its target (class codes for ``classes``).
    """
    import numpy as np
    import pandas as pd

    if binned:
        ref_values, rest_values = _as_float(ref[column]), _as_float(rest[column])
        finite = ref_values[np.isfinite(ref_values)]
        quantiles = np.linspace(0.0, 1.0, _MULTICLASS_BINS + 1)[1:-1]
        edges = np.unique(np.quantile(finite, quantiles)) if finite.size else np.array([])
        codes_ref = np.searchsorted(edges, ref_values, side="right")
        codes_rest = np.searchsorted(edges, rest_values, side="right")
        width = len(edges) + 1
    else:
        both = pd.concat([ref[column], rest[column]], ignore_index=True)
        codes, uniques = pd.factorize(both, use_na_sentinel=False)
        codes_ref, codes_rest = codes[: len(ref)], codes[len(ref) :]
        width = len(uniques)
    if how == "rate":
        levels = np.sort(pd.concat([ref[target], rest[target]]).unique())
        y_ref = (ref[target].to_numpy() == levels[-1]).astype(np.float64)
        y_rest: npt.NDArray[Any] = (rest[target].to_numpy() == levels[-1]).astype(np.int64)
    if how == "mean":
        y_ref = ref[target].to_numpy(dtype=np.float64)
        y_rest = rest[target].to_numpy(dtype=np.float64)
    if how != "classes":
        sums = np.bincount(codes_ref, weights=y_ref, minlength=width)
        counts = np.bincount(codes_ref, minlength=width)
        means = np.full(width, float(y_ref.mean()))
        np.divide(sums, counts, out=means, where=counts > 0)
        return means[codes_rest][:, None], y_rest
    classes, class_codes = np.unique(
        pd.concat([ref[target], rest[target]]).to_numpy(), return_inverse=True
    )
    k = len(classes)
    y_ref_codes, y_rest_codes = class_codes[: len(ref)], class_codes[len(ref) :]
    table = np.bincount(codes_ref * k + y_ref_codes, minlength=width * k).reshape(width, k)
    totals = table.sum(axis=1, keepdims=True)
    prior_rates = np.bincount(y_ref_codes, minlength=k) / max(len(ref), 1)
    rates = np.where(totals > 0, table / np.maximum(totals, 1), prior_rates)
    return rates[codes_rest], y_rest_codes


def _ranks(x: npt.NDArray[Any]) -> npt.NDArray[Any]:
    import numpy as np
    import pandas as pd

    return pd.Series(x).rank(method="average").to_numpy(dtype=np.float64)


def _auc(score: npt.NDArray[Any], positive: npt.NDArray[Any]) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula, tied scores sharing their rank."""
    import numpy as np

    positive = positive.astype(bool)
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    order = np.argsort(score)
    ordered = score[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    ends = np.append(starts[1:], len(ordered))
    positives_per_tie = np.add.reduceat(positive[order].astype(np.int64), starts)
    rank_sum = float(((starts + ends + 1) / 2.0 * positives_per_tie).sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def _macro_auc(rates: npt.NDArray[np.float64], y_codes: npt.NDArray[Any]) -> float:
    import numpy as np

    present = np.unique(y_codes)
    aucs = [_auc(rates[:, c], y_codes == c) for c in present]
    return float(np.mean(aucs)) if aucs else 0.5


def _spearman(x: npt.NDArray[np.float64], y: pd.Series[Any]) -> float:
    import numpy as np

    rx = _ranks(x)
    ry = _ranks(y.to_numpy(dtype=np.float64))
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum() / denominator) if denominator > 0 else 0.0


def _listing(values: Any, limit: int = 10) -> str:
    items = [repr(str(v)) for v in values]
    more = f", … ({len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def _plain(value: Any) -> Any:
    """A numpy scalar or timestamp as a JSON-friendly Python value."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            return str(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
