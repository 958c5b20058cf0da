"""Drift results: one ``ColumnDrift`` per column, gathered in a ``DriftReport``.

Everything a report holds converts to plain JSON (``to_dict``): NaN and infinities
become ``null``, NumPy scalars become numbers, slice values and category keys become
strings. ``to_html`` writes one self-contained file (see ``keel.monitoring._html``).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.data._report import _plain as plain

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["ColumnDrift", "Distribution", "DriftReport"]

STATUSES = {
    "ok": "compared",
    "missing": "the column is missing from the current data",
    "no_data": "the current data has no rows",
    "all_missing": "every current value is missing",
    "type_mismatch": "the current type cannot be compared with the reference",
    "no_reference_data": "the reference has no values in this column",
    "high_cardinality": "too many distinct reference values to compare categories",
}


@dataclass(frozen=True)
class Distribution:
    """What the plot of a column shows: numeric ``edges`` (with the outer bins bounded
    by the data) or category ``labels``, and both sides' counts on them."""

    reference: list[float]
    current: list[float]
    edges: list[float] | None = None
    labels: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = plain(
            {
                "edges": self.edges,
                "labels": self.labels,
                "reference": self.reference,
                "current": self.current,
            }
        )
        return out


@dataclass
class ColumnDrift:
    """The drift result for one column.

    ``status`` is ``ok`` when the column was compared, else a data-quality finding
    (``missing``, ``no_data``, ``all_missing``, ``type_mismatch``, ``no_reference_data``,
    ``high_cardinality``) with ``drifted=False``. For p-value methods ``statistic`` is
    the test statistic, ``p_value`` the raw p-value and ``p_value_adjusted`` the
    Benjamini-Hochberg one that is compared with ``threshold``; distances have no
    p-value and drift when ``statistic >= threshold``.
    """

    column: str
    kind: str
    status: str = "ok"
    method: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_value_adjusted: float | None = None
    threshold: float | None = None
    drifted: bool = False
    message: str = ""
    reference_count: int = 0
    current_count: int = 0
    reference_missing_share: float | None = None
    current_missing_share: float | None = None
    reference_mean: float | None = None
    current_mean: float | None = None
    reference_std: float | None = None
    current_std: float | None = None
    mean_shift: float | None = None
    out_of_range_share: float | None = None
    unseen_share: float | None = None
    unseen_examples: list[Any] = field(default_factory=list)
    top_changes: list[dict[str, Any]] = field(default_factory=list)
    distribution: Distribution | None = field(default=None, repr=False)

    @property
    def compared(self) -> bool:
        return self.status == "ok"

    def to_dict(self, *, distribution: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "column": self.column,
            "kind": self.kind,
            "status": self.status,
            "method": self.method,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_value_adjusted": self.p_value_adjusted,
            "threshold": self.threshold,
            "drifted": self.drifted,
            "message": self.message,
            "reference_count": self.reference_count,
            "current_count": self.current_count,
            "reference_missing_share": self.reference_missing_share,
            "current_missing_share": self.current_missing_share,
        }
        if self.kind == "numeric":
            out.update(
                reference_mean=self.reference_mean,
                current_mean=self.current_mean,
                reference_std=self.reference_std,
                current_std=self.current_std,
                mean_shift=self.mean_shift,
                out_of_range_share=self.out_of_range_share,
            )
        elif self.kind == "categorical":
            out.update(
                unseen_share=self.unseen_share,
                unseen_examples=self.unseen_examples,
                top_changes=self.top_changes,
            )
        if distribution and self.distribution is not None:
            out["distribution"] = self.distribution.to_dict()
        result: dict[str, Any] = plain(out)
        return result


@dataclass
class DriftReport:
    """Drift of every column of one window against the reference, and per slice.

    ``drifted`` is the dataset-level verdict: at least ``dataset_share`` of the compared
    columns drifted (Evidently's rule; 0.5 by default). ``status`` is ``ok``, ``no_data``
    (the window has no rows) or ``no_reference`` (a slice value the reference lacks).
    """

    columns: dict[str, ColumnDrift]
    reference_rows: int
    current_rows: int
    status: str = "ok"
    message: str = ""
    dataset_share: float = 0.5
    slices: dict[str, dict[Any, DriftReport]] = field(default_factory=dict)
    unexpected_columns: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    title: str = "Drift report"
    created_at: float = field(default_factory=lambda: dt.datetime.now(dt.UTC).timestamp())

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, c in self.columns.items() if c.drifted]

    @property
    def compared_columns(self) -> list[str]:
        return [name for name, c in self.columns.items() if c.compared]

    @property
    def drift_share(self) -> float:
        """Drifted columns over compared columns (0 when none was compared)."""
        compared = len(self.compared_columns)
        return len(self.drifted_columns) / compared if compared else 0.0

    @property
    def drifted(self) -> bool:
        return bool(self.compared_columns) and self.drift_share >= self.dataset_share

    @property
    def findings(self) -> list[ColumnDrift]:
        """Columns that could not be compared: data-quality problems to look at."""
        return [c for c in self.columns.values() if not c.compared]

    def to_dict(self, *, distributions: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = plain(
            {
                "title": self.title,
                "status": self.status,
                "message": self.message,
                "drifted": self.drifted,
                "drift_share": self.drift_share,
                "dataset_share": self.dataset_share,
                "drifted_columns": self.drifted_columns,
                "reference_rows": self.reference_rows,
                "current_rows": self.current_rows,
                "created_at": self.created_at,
                "params": self.params,
                "unexpected_columns": self.unexpected_columns,
                "columns": {
                    name: c.to_dict(distribution=distributions) for name, c in self.columns.items()
                },
                "slices": {
                    name: {
                        str(value): sub.to_dict(distributions=distributions)
                        for value, sub in values.items()
                    }
                    for name, values in self.slices.items()
                },
            }
        )
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """Strict JSON (no NaN or Infinity tokens)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def to_html(self, path: Path | str) -> Path:
        """Write one self-contained HTML file (plots inline); returns its path."""
        from keel.monitoring._html import render_html

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(self), encoding="utf-8")
        return out

    def __rich__(self) -> Table:
        """A terminal table: drifted columns first, then findings, then the rest."""
        from rich.table import Table
        from rich.text import Text

        verdict = "DRIFT" if self.drifted else "no drift" if self.status == "ok" else self.status
        table = Table(
            title=f"{self.title}: {verdict} ({len(self.drifted_columns)} of "
            f"{len(self.compared_columns)} columns, {self.current_rows} rows)",
            title_justify="left",
        )
        for name in ("column", "verdict", "method", "statistic", "threshold", "why"):
            table.add_column(name, overflow="fold")
        ordered = sorted(self.columns.values(), key=lambda c: (not c.drifted, c.compared))
        for c in ordered:
            verdict_text = (
                Text("drifted", style="bold red")
                if c.drifted
                else Text("stable", style="green")
                if c.compared
                else Text(c.status, style="yellow")
            )
            table.add_row(
                Text(c.column),
                verdict_text,
                Text(c.method or ""),
                Text("" if c.statistic is None else f"{c.statistic:.4g}"),
                Text("" if c.threshold is None else f"{c.threshold:g}"),
                Text(c.message),
            )
        return table

    def __repr__(self) -> str:
        drifted = self.drifted_columns
        listed = ", ".join(drifted[:5]) + (", ..." if len(drifted) > 5 else "")
        return (
            f"DriftReport({self.status}, {self.current_rows} rows vs {self.reference_rows}: "
            f"{len(drifted)}/{len(self.compared_columns)} columns drifted"
            + (f" [{listed}]" if drifted else "")
            + ")"
        )
