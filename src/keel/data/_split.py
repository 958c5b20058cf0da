"""Train/validation/test splits that keep class balance, respect groups and are recorded.

A split is a function of the frame, the parameters and the seed alone. Classes (or, for
a continuous target, quantile bins of it) are shared out to each split in proportion;
with ``group`` every group lands in one split. The result says how balanced it came out
and what :func:`~keel.data._leakage.check_leakage` found, and, given a recorder, each
split becomes a dataset version whose parent is the source.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from keel.core._data import DatasetVersion, validate_dataset_name
from keel.data._leakage import LeakageReport, check_leakage, target_kind
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = ["BalanceReport", "SplitBalance", "SplitRecorder", "SplitResult", "split"]

#: A split whose stratum proportions are all within this of the whole frame's is balanced.
BALANCE_TOLERANCE = 0.02
#: A continuous target is stratified on at most this many equal-frequency bins.
MAX_QUANTILE_BINS = 10
_ORDER = ("train", "val", "test")
_EPS = 1e-9


class SplitRecorder(Protocol):
    """Records one split as a dataset version (``DataService.add_frame`` has this shape)."""

    def __call__(
        self,
        df: pd.DataFrame,
        name: str,
        *,
        message: str,
        parents: Sequence[DatasetVersion],
        metadata: Mapping[str, Any],
    ) -> DatasetVersion: ...


@dataclass(frozen=True)
class SplitBalance:
    """Rows and stratum counts of one split (or the whole frame), stratum labels as text."""

    rows: int
    fraction: float
    requested: float
    counts: Mapping[str, int]
    proportions: Mapping[str, float]
    max_deviation: float = 0.0
    target_mean: float | None = None
    target_std: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class BalanceReport:
    """How each split's strata compare with the whole frame's.

    ``strata`` is ``class`` for a categorical target and ``quantile`` for a continuous
    one (``edges`` then holds the bin edges). The report is filled in whether or not
    the split was stratified, so an unstratified split shows its imbalance too.
    """

    strata: Literal["class", "quantile"]
    stratified: bool
    whole: SplitBalance
    splits: Mapping[str, SplitBalance]
    tolerance: float = BALANCE_TOLERANCE
    edges: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def max_deviation(self) -> float:
        return max((s.max_deviation for s in self.splits.values()), default=0.0)

    @property
    def within_tolerance(self) -> bool:
        return self.max_deviation <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {
            "strata": self.strata,
            "stratified": self.stratified,
            "tolerance": self.tolerance,
            "max_deviation": self.max_deviation,
            "within_tolerance": self.within_tolerance,
            "edges": list(self.edges),
            "whole": self.whole.to_dict(),
            "splits": {name: s.to_dict() for name, s in self.splits.items()},
            "notes": list(self.notes),
        }


@dataclass(frozen=True, eq=False)
class SplitResult:
    """The splits (original index labels kept), their balance, leakage and versions."""

    train: pd.DataFrame
    val: pd.DataFrame | None
    test: pd.DataFrame
    balance: BalanceReport
    leakage: LeakageReport
    params: Mapping[str, Any]
    versions: Mapping[str, DatasetVersion] = field(default_factory=dict)

    @property
    def frames(self) -> dict[str, pd.DataFrame]:
        """``train``, ``val`` (when there is one) and ``test``, in that order."""
        out = {"train": self.train}
        if self.val is not None:
            out["val"] = self.val
        out["test"] = self.test
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "params": dict(self.params),
            "rows": {name: len(frame) for name, frame in self.frames.items()},
            "balance": self.balance.to_dict(),
            "leakage": self.leakage.to_dict(),
            "versions": {name: v.ref for name, v in self.versions.items()},
        }


def split(
    df: pd.DataFrame,
    target: str,
    test: float = 0.2,
    val: float = 0.1,
    stratify: bool = True,
    group: str | None = None,
    seed: int = 0,
    *,
    record: SplitRecorder | None = None,
    name: str | None = None,
    parent: DatasetVersion | None = None,
) -> SplitResult:
    """Split ``df`` into train, validation (unless ``val=0``) and test rows.

    Deterministic for a ``seed``. ``stratify`` keeps the class proportions of ``target``
    in every split (for a continuous target, the proportions of its quantile bins);
    ``group`` names a column whose values never straddle two splits. Rows keep their
    index labels and relative order. With ``record`` each split is recorded as dataset
    ``{name}-train``/``-val``/``-test`` (``name`` defaults to ``parent.name``).
    """
    import numpy as np

    fractions = _check_arguments(df, target, test, val, group, seed, record, name, parent)
    if record is not None and name is None:
        assert parent is not None  # checked above
        name = parent.name
    n = len(df)
    y = df[target]
    kind = target_kind(y)
    strata: Literal["class", "quantile"] = "quantile" if kind == "regression" else "class"
    need = math.ceil(1.0 / min(fractions.values()) - _EPS)
    codes, labels, edges = _strata(y, strata, n, need)
    if stratify and strata == "class":
        _check_class_sizes(codes, labels, target, need, fractions)
    rng = np.random.default_rng(seed)
    if group is not None:
        assignment = _assign_groups(df[group], codes if stratify else None, fractions, rng)
        _check_groups_filled(assignment, fractions, group)
    else:
        assignment = _assign_rows(codes if stratify else np.zeros(n, np.int64), fractions, rng)
    frames = {s: df.iloc[np.flatnonzero(assignment == i)] for i, s in enumerate(_ORDER)}
    frames = {s: f for s, f in frames.items() if s in fractions}
    balance = _balance(
        y, codes, labels, assignment, fractions, strata, stratify, group, edges, kind
    )
    leakage = check_leakage(frames, target, group)
    params: dict[str, Any] = {
        "target": target,
        "test": test,
        "val": val,
        "stratify": stratify,
        "group": group,
        "seed": seed,
        "strata": strata,
        "rows": n,
    }
    versions: dict[str, DatasetVersion] = {}
    if record is not None and name is not None:
        source = parent.ref if parent is not None else "a frame"
        for split_name, frame in frames.items():
            versions[split_name] = record(
                frame,
                f"{name}-{split_name}",
                message=f"{split_name} split of {source} (test={test}, val={val}, seed={seed})",
                parents=[parent] if parent is not None else [],
                metadata={
                    "split": split_name,
                    "params": params,
                    "balance": balance.splits[split_name].to_dict(),
                    "leakage_passed": leakage.passed,
                },
            )
    return SplitResult(
        train=frames["train"],
        val=frames.get("val"),
        test=frames["test"],
        balance=balance,
        leakage=leakage,
        params=params,
        versions=versions,
    )


def _check_arguments(
    df: Any,
    target: Any,
    test: Any,
    val: Any,
    group: Any,
    seed: Any,
    record: Any,
    name: Any,
    parent: Any,
) -> dict[str, float]:
    """The requested fraction per split (no ``val`` when it is 0), or a clear refusal."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise InvalidArgument(f"split needs a pandas DataFrame, got {type(df).__name__}")
    if len(df) == 0:
        raise InvalidArgument("the frame is empty: split needs rows; check how it was loaded")
    if df.columns.has_duplicates:
        dupes = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise InvalidArgument(f"column names repeat ({', '.join(dupes)}); rename them first")
    for role, column in (("target", target), ("group", group)):
        if column is None and role == "group":
            continue
        if column not in df.columns:
            shown = ", ".join(repr(str(c)) for c in list(df.columns)[:10])
            more = " …" if len(df.columns) > 10 else ""
            raise InvalidArgument(
                f"no {role} column {column!r}; the columns are {shown}{more}: "
                f"pass one of them as {role}="
            )
    if group is not None and group == target:
        raise InvalidArgument(f"group and target are both {target!r}; group by an entity id")
    for label, value, lowest in (("test", test, "0"), ("val", val, "0 (no val split)")):
        if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
            raise InvalidArgument(f"{label} must be a fraction such as 0.2, got {value!r}")
        if label == "test" and not 0.0 < value < 1.0:
            raise InvalidArgument(f"test must be in (0, 1), got {value}; 0.2 is usual")
        if label == "val" and not 0.0 <= value < 1.0:
            raise InvalidArgument(f"val must be in [0, 1), got {value}; use {lowest} or 0.1")
    if test + val >= 1.0 - _EPS:
        raise InvalidArgument(
            f"test + val = {test + val:g} leaves no rows for training; keep their sum below 1, "
            "e.g. test=0.2, val=0.1"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidArgument(f"seed must be a non-negative integer, got {seed!r}")
    missing = df[target].isna()
    if missing.any():
        rows = ", ".join(repr(r) for r in df.index[missing][:5].tolist())
        raise InvalidArgument(
            f"target {target!r} has {int(missing.sum())} missing values (rows {rows}…); "
            f"drop or fill them before splitting, e.g. df.dropna(subset=[{target!r}])"
        )
    if group is not None and df[group].isna().any():
        count = int(df[group].isna().sum())
        raise InvalidArgument(
            f"group {group!r} has {count} missing values; give each such row its own group "
            "id or drop it, since a missing id cannot keep an entity in one split"
        )
    if parent is not None and not isinstance(parent, DatasetVersion):
        raise InvalidArgument(f"parent must be a DatasetVersion, got {type(parent).__name__}")
    if record is None and (name is not None or parent is not None):
        raise InvalidArgument(
            "name= and parent= describe recorded splits; pass record= too "
            "(e.g. record=data_service.add_frame) or drop them"
        )
    if record is not None:
        if not callable(record):
            raise InvalidArgument("record must be callable like DataService.add_frame")
        if name is None and parent is None:
            raise InvalidArgument("recording splits needs name= (or parent=, whose name is used)")
        base = name if name is not None else getattr(parent, "name", "")
        validate_dataset_name(f"{base}-train")
    fractions = {"train": 1.0 - test - val, "val": float(val), "test": float(test)}
    fractions = {s: f for s, f in fractions.items() if f > 0.0}
    for split_name, fraction in fractions.items():
        if len(df) * fraction < 1.0 - _EPS:
            raise InvalidArgument(
                f"the frame has {len(df)} rows: a {split_name} fraction of {fraction:g} "
                f"gets no row; use at least {math.ceil(1 / fraction - _EPS)} rows "
                "or a larger fraction"
            )
    return fractions


def _strata(
    y: pd.Series[Any], strata: str, n: int, need: int
) -> tuple[npt.NDArray[np.int64], list[str], tuple[float, ...]]:
    """Stratum codes per row, stratum labels, and (for quantile bins) the bin edges."""
    import numpy as np
    import pandas as pd

    if strata == "class":
        try:
            codes, uniques = pd.factorize(y, sort=True)
        except TypeError:  # classes of mixed types do not sort
            codes, uniques = pd.factorize(y)
        return codes.astype(np.int64), [str(u) for u in uniques], ()
    bins = max(1, min(MAX_QUANTILE_BINS, n // need))
    ranks = y.rank(method="first").to_numpy(dtype=np.float64) - 1.0
    codes = np.floor(ranks * bins / n).astype(np.int64)
    values = y.to_numpy(dtype=np.float64)
    ordered = np.sort(values)
    firsts = [(i * n + bins - 1) // bins for i in range(bins)]  # first rank in each bin
    edges = (*(float(ordered[i]) for i in firsts), float(ordered[-1]))
    return codes, [f"q{i + 1}" for i in range(bins)], edges


def _check_class_sizes(
    codes: npt.NDArray[np.int64],
    labels: list[str],
    target: str,
    need: int,
    fractions: Mapping[str, float],
) -> None:
    import numpy as np

    counts = np.bincount(codes, minlength=len(labels))
    smallest = int(counts.argmin())
    if counts[smallest] < need:
        rare = int((counts < need).sum())
        which = min(fractions, key=lambda s: fractions[s])
        raise InvalidArgument(
            f"class {labels[smallest]!r} of {target!r} has {int(counts[smallest])} rows "
            f"({rare} classes have fewer than {need}); stratifying with "
            f"{which}={fractions[which]:g} needs at least {need} per class so each split "
            "gets one: merge or drop rare classes, use larger fractions, or stratify=False"
        )


def _largest_remainder(
    counts: npt.NDArray[np.int64], total: int, rng: np.random.Generator
) -> npt.NDArray[Any]:
    """``total`` shared out over ``counts`` in proportion, remainders to the largest parts."""
    import numpy as np

    exact = counts * (total / counts.sum())
    base = np.floor(exact + _EPS).astype(np.int64)
    left = int(total - base.sum())
    if left > 0:
        order = np.lexsort((rng.random(len(counts)), -(exact - base)))
        base[order[:left]] += 1
    shares: npt.NDArray[Any] = np.minimum(base, counts)
    return shares


def _assign_rows(
    codes: npt.NDArray[np.int64], fractions: Mapping[str, float], rng: np.random.Generator
) -> npt.NDArray[np.int8]:
    """Split index (0 train, 1 val, 2 test) per row, each stratum shared out in proportion."""
    import numpy as np

    n = len(codes)
    counts = np.bincount(codes)
    taken = np.zeros((len(counts), 3), dtype=np.int64)
    for index in (2, 1):
        fraction = fractions.get(_ORDER[index], 0.0)
        if fraction > 0.0:
            taken[:, index] = _largest_remainder(counts, round(n * fraction), rng)
    taken[:, 0] = counts - taken[:, 1] - taken[:, 2]
    # A class can come up one or two rows short for training after rounding up twice.
    for _ in range(2):
        short = (taken[:, 0] < 1) & (counts * fractions["train"] >= 1.0 - _EPS)
        if not short.any():
            break
        donor = np.where(taken[:, 2] >= taken[:, 1], 2, 1)
        rows = np.flatnonzero(short)
        taken[rows, donor[rows]] -= 1
        taken[rows, 0] += 1
    order = np.lexsort((rng.random(n), codes))
    sorted_codes = codes[order]
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n) - starts[sorted_codes]
    cut_test = taken[sorted_codes, 2]
    cut_val = cut_test + taken[sorted_codes, 1]
    assignment = np.empty(n, dtype=np.int8)
    assignment[order] = np.where(rank < cut_test, 2, np.where(rank < cut_val, 1, 0))
    return assignment


def _assign_groups(
    groups: pd.Series[Any],
    codes: npt.NDArray[np.int64] | None,
    fractions: Mapping[str, float],
    rng: np.random.Generator,
) -> npt.NDArray[np.int8]:
    """Split index per row with whole groups; greedy toward stratum targets when stratified.

    Unstratified, groups in random order fill test, then val, then train up to their row
    targets. Stratified, each group in random order goes to the split whose stratum
    counts it brings closest to target (chi-square distance), which is the best a split
    can do when groups are indivisible; the balance report shows how close it came.
    """
    import numpy as np
    import pandas as pd

    group_codes, _ = pd.factorize(groups)
    n_groups = int(group_codes.max()) + 1
    n = len(group_codes)
    order = rng.permutation(n_groups)
    chosen = np.empty(n_groups, dtype=np.int8)
    if codes is None:
        sizes = np.bincount(group_codes, minlength=n_groups)[order]
        middle = np.cumsum(sizes) - sizes / 2.0
        test_end = n * fractions["test"]
        val_end = test_end + n * fractions.get("val", 0.0)
        chosen[order] = np.where(middle < test_end, 2, np.where(middle < val_end, 1, 0))
    else:
        k = int(codes.max()) + 1
        table = np.bincount(group_codes * k + codes, minlength=n_groups * k).reshape(-1, k)
        active = [i for i, s in enumerate(_ORDER) if s in fractions]
        share = np.array([fractions[_ORDER[i]] for i in active])
        wanted = share[:, None] * table.sum(axis=0)[None, :].astype(np.float64)
        picks = _greedy_groups(table, wanted, order)
        chosen[:] = np.asarray(active, dtype=np.int8)[picks]
    return chosen[group_codes]


def _greedy_groups(
    table: npt.NDArray[np.int64], wanted: npt.NDArray[np.float64], order: npt.NDArray[Any]
) -> npt.NDArray[Any]:
    """For each group (row of ``table``, taken in ``order``), the split it is placed in.

    Placing a group adds its stratum counts to a split; the split chosen is the one that
    most lowers the chi-square distance to ``wanted`` (splits x strata). Plain Python
    over the nonzero counts only: a group rarely spans many strata, and at this size a
    loop of floats beats a loop of small numpy operations several times over.
    """
    import numpy as np

    rows, columns = np.nonzero(table)
    starts = np.searchsorted(rows, np.arange(len(table) + 1)).tolist()
    strata = columns.tolist()
    counts = table[rows, columns].astype(np.float64).tolist()
    weight = (1.0 / np.maximum(wanted, _EPS)).tolist()
    gap = (-wanted).tolist()
    splits = range(len(gap))
    picks = [0] * len(table)
    for g in order.tolist():
        members = range(starts[g], starts[g + 1])
        best, best_cost = 0, math.inf
        for s in splits:
            gap_s, weight_s = gap[s], weight[s]
            cost = 0.0
            for m in members:
                j, v = strata[m], counts[m]
                cost += (2.0 * gap_s[j] + v) * v * weight_s[j]
            if cost < best_cost:
                best, best_cost = s, cost
        for m in members:
            gap[best][strata[m]] += counts[m]
        picks[g] = best
    return np.asarray(picks, dtype=np.int64)


def _check_groups_filled(
    assignment: npt.NDArray[np.int8], fractions: Mapping[str, float], group: str
) -> None:
    import numpy as np

    filled = np.bincount(assignment, minlength=3)
    for index, split_name in enumerate(_ORDER):
        if split_name in fractions and filled[index] == 0:
            raise InvalidArgument(
                f"no whole group of {group!r} fits the {split_name} split: the groups are "
                "too few or too large for these fractions; use more, smaller groups or "
                f"a larger {split_name} fraction"
            )


def _balance(
    y: pd.Series[Any],
    codes: npt.NDArray[np.int64],
    labels: list[str],
    assignment: npt.NDArray[np.int8],
    fractions: Mapping[str, float],
    strata: Literal["class", "quantile"],
    stratified: bool,
    group: str | None,
    edges: tuple[float, ...],
    kind: str,
) -> BalanceReport:
    import numpy as np

    n = len(codes)
    k = len(labels)
    values = y.to_numpy(dtype=np.float64) if kind == "regression" else None

    def summary(mask: npt.NDArray[np.bool_] | None, requested: float) -> SplitBalance:
        part = codes if mask is None else codes[mask]
        counts = np.bincount(part, minlength=k)
        rows = int(counts.sum())
        proportions = counts / max(rows, 1)
        deviation = float(np.abs(proportions - whole_proportions).max()) if rows else 1.0
        target_values = None if values is None else values if mask is None else values[mask]
        return SplitBalance(
            rows=rows,
            fraction=round(rows / n, 6),
            requested=round(requested, 6),
            counts={label: int(c) for label, c in zip(labels, counts, strict=True)},
            proportions={
                label: round(float(p), 6) for label, p in zip(labels, proportions, strict=True)
            },
            max_deviation=round(deviation, 6),
            target_mean=None if target_values is None else float(target_values.mean()),
            target_std=None if target_values is None else float(target_values.std()),
        )

    whole_proportions = np.bincount(codes, minlength=k) / n
    whole = summary(None, 1.0)
    splits = {
        s: summary(assignment == i, fractions[s]) for i, s in enumerate(_ORDER) if s in fractions
    }
    notes: list[str] = []
    if strata == "quantile":
        notes.append(
            f"{y.name!r} is continuous: strata are {k} equal-frequency bins of it"
            + ("" if stratified else " (shown for information; the split is not stratified)")
        )
    elif not stratified:
        notes.append("not stratified: the class balance is shown for information")
    worst = max(part.max_deviation for part in splits.values())
    if stratified and group is not None and worst > BALANCE_TOLERANCE:
        notes.append(
            f"groups of {group!r} are indivisible, so stratification was best-effort: a "
            f"stratum is off by {worst:.3f} (tolerance {BALANCE_TOLERANCE}); "
            "more, smaller groups balance better"
        )
    return BalanceReport(strata, stratified, whole, splits, edges=edges, notes=tuple(notes))
