"""Model cards: what a version is, where it came from, how well it does, who approved it.

Built from the version's lineage, its run's evaluation report
(``evaluation/report.json``: overall metrics, per-slice rows, fairness) and gate
(``evaluation/gate.json`` and the ``keel.gate`` tag), its aliases and approvals.
Rendered as Markdown or as one self-contained HTML page; every user-supplied string is
escaped in both.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from keel.core._models import EVALUATION_ARTIFACT, GATE_ARTIFACT
from keel.errors import KeelError
from keel.registry._lineage import Lineage
from keel.stores.metadata._registry import Approval
from keel.tracking import TrackingService

__all__ = ["ModelCard", "build_card"]

Table = tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]


@dataclass(frozen=True)
class ModelCard:
    """A model card for one version; ``to_markdown()`` and ``to_html()`` render it."""

    lineage: Lineage
    intended_use: str = ""
    limitations: str = ""
    evaluation: Mapping[str, Any] | None = None
    gate_report: Mapping[str, Any] | None = None
    approvals: tuple[Approval, ...] = ()
    sections: tuple[tuple[str, Table], ...] = field(default=(), repr=False)

    @property
    def title(self) -> str:
        v = self.lineage.version
        return f"Model card: {v.name} version {v.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "intended_use": self.intended_use,
            "limitations": self.limitations,
            "lineage": self.lineage.to_dict(),
            "evaluation": dict(self.evaluation) if self.evaluation is not None else None,
            "gate": dict(self.gate_report) if self.gate_report is not None else None,
            "approvals": [a.__dict__ for a in self.approvals],
        }

    def to_markdown(self) -> str:
        out = [f"# {_md(self.title)}", ""]
        for heading, text in self._prose():
            out += [f"## {_md(heading)}", "", _md(text) if text else "_Not stated._", ""]
        for heading, (columns, rows) in self.sections:
            out += [f"## {_md(heading)}", ""]
            if not rows:
                out += ["_None recorded._", ""]
                continue
            out.append("| " + " | ".join(_md_cell(c) for c in columns) + " |")
            out.append("|" + "---|" * len(columns))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
            out.append("")
        return "\n".join(out)

    def to_html(self) -> str:
        parts = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title>",
            f"<style>{_CSS}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for heading, text in self._prose():
            body = html.escape(text) if text else "<em>Not stated.</em>"
            parts.append(f"<h2>{html.escape(heading)}</h2><p>{body}</p>")
        for heading, (columns, rows) in self.sections:
            parts.append(f"<h2>{html.escape(heading)}</h2>")
            if not rows:
                parts.append("<p><em>None recorded.</em></p>")
                continue
            head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
            body_rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
                for row in rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body_rows}</tbody></table>")
        parts.append("</body></html>")
        return "\n".join(parts)

    def _prose(self) -> list[tuple[str, str]]:
        v = self.lineage.version
        return [
            ("Description", v.description),
            ("Intended use", self.intended_use),
            ("Limitations", self.limitations),
        ]


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em;"
    "color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}"
    "h2{border-bottom:1px solid #ddd;padding-bottom:.2em}"
)


def _md(text: str) -> str:
    return html.escape(text, quote=False)


def _md_cell(text: str) -> str:
    return _md(text).replace("|", "\\|").replace("\n", " ")


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, Mapping) and "value" in value:
        # an estimate with its confidence interval: {"value", "low", "high", "note"}
        low, high = value.get("low"), value.get("high")
        shown = _fmt(value["value"])
        if isinstance(low, int | float) and isinstance(high, int | float):
            shown += f" [{_fmt(low)}, {_fmt(high)}]"
        return shown
    return orjson.dumps(value, default=str).decode()


def _when(stamp: float | None) -> str:
    if stamp is None:
        return ""
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _scalars(data: Mapping[str, Any]) -> dict[str, Any]:
    """The entries that are numbers, strings or estimates (``{"value": ...}``)."""
    return {
        k: v
        for k, v in data.items()
        if (isinstance(v, int | float | str) and not isinstance(v, bool))
        or (isinstance(v, Mapping) and "value" in v)
    }


def _read_json(tracking: TrackingService, run_id: str, name: str) -> dict[str, Any] | None:
    names = {a.name for a in tracking.list_artifacts(run_id)}
    if name not in names:
        return None
    try:
        loaded = orjson.loads(tracking.read_artifact(run_id, name))
    except (KeelError, orjson.JSONDecodeError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _slice_rows(slices: Any) -> tuple[tuple[str, ...], tuple[tuple[str, ...], ...]]:
    """Per-slice rows from a list of slice records or a ``{column: {value: metrics}}`` map."""
    records: list[tuple[str, Any, dict[str, Any]]] = []
    if isinstance(slices, Mapping):
        for column, values in slices.items():
            if isinstance(values, Mapping):
                for value, metrics in values.items():
                    if isinstance(metrics, Mapping):
                        records.append(
                            (f"{column} = {value}", metrics.get("count"), _slice_metrics(metrics))
                        )
    elif isinstance(slices, Sequence) and not isinstance(slices, str):
        for item in slices:
            if not isinstance(item, Mapping):
                continue
            column = item.get("slice", item.get("column"))
            label = item.get("name") if column is None else f"{column} = {item.get('value')}"
            records.append((str(label), item.get("count"), _slice_metrics(item)))
    keys = sorted({k for _, _, m in records for k in m})[:10]
    rows = tuple(
        (label, _fmt(count), *(_fmt(m.get(k)) for k in keys)) for label, count, m in records
    )
    return ("slice", "count", *keys), rows


def _slice_metrics(item: Mapping[str, Any]) -> dict[str, Any]:
    metrics = item.get("metrics")
    source = metrics if isinstance(metrics, Mapping) else item
    skip = {"count", "slice", "name", "column", "value"}
    return {k: v for k, v in _scalars(source).items() if k not in skip}


def _flatten(data: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    for key, value in data.items():
        label = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += _flatten(value, label + ".")
        else:
            rows.append((label, _fmt(value)))
    return rows


def build_card(
    lineage: Lineage,
    tracking: TrackingService,
    *,
    approvals: Sequence[Approval] = (),
    intended_use: str = "",
    limitations: str = "",
) -> ModelCard:
    """Assemble the card's sections; missing reports leave their sections empty."""
    v, run = lineage.version, lineage.run
    report = _read_json(tracking, run.id, EVALUATION_ARTIFACT)
    gate_report = _read_json(tracking, run.id, GATE_ARTIFACT)
    git = lineage.code.get("git")
    commit = ""
    if isinstance(git, Mapping):
        commit = f"{git.get('commit', '')}{' (dirty)' if git.get('dirty') else ''}"
    env = lineage.environment
    packages = env.get("packages")
    summary = (
        ("name", v.name),
        ("version", str(v.version)),
        ("status", v.status),
        ("aliases", ", ".join(v.aliases)),
        ("registered", _when(v.created_at)),
        ("source", v.source),
        ("run", f"{run.name} ({run.id}) in experiment {lineage.experiment}"),
        ("code version", commit),
        ("python", str(env.get("python", ""))),
        ("platform", str(env.get("platform", ""))),
        ("packages", str(len(packages)) if isinstance(packages, list) else ""),
        ("environment digest", run.environment_digest or ""),
        ("gate", v.gate or "not run"),
    )
    overall: dict[str, Any] = {}
    slices: Any = None
    fairness: Mapping[str, Any] = {}
    if report is not None:
        metrics = report.get("metrics", report.get("overall"))
        overall = _scalars(metrics) if isinstance(metrics, Mapping) else {}
        slices = report.get("slices")
        found = report.get("fairness")
        fairness = found if isinstance(found, Mapping) else {}
    if not overall:
        overall = dict(run.metrics)
    gate_rows: list[tuple[str, str]] = [("result", v.gate or "not run")]
    if gate_report is not None:
        reasons = gate_report.get("reasons", gate_report.get("checks", []))
        if isinstance(reasons, Sequence) and not isinstance(reasons, str):
            gate_rows += [("check", _fmt(r)) for r in reasons]
    sections: tuple[tuple[str, Table], ...] = (
        ("Summary", (("field", "value"), summary)),
        (
            "Overall metrics",
            (("metric", "value"), tuple((k, _fmt(x)) for k, x in sorted(overall.items()))),
        ),
        ("Per-slice metrics", _slice_rows(slices)),
        ("Fairness", (("measure", "value"), tuple(_flatten(fairness)))),
        ("Validation gate", (("item", "value"), tuple(gate_rows))),
        (
            "Training data",
            (("dataset", "digest"), tuple((d.ref, d.digest) for d in lineage.datasets)),
        ),
        ("Parameters", (("param", "value"), tuple(sorted(lineage.params.items())))),
        (
            "Approvals",
            (
                ("when", "alias", "kind", "approver", "gate", "reason"),
                tuple(
                    (_when(a.at), a.alias, a.kind, a.approver, a.gate or "", a.reason)
                    for a in approvals
                ),
            ),
        ),
    )
    return ModelCard(
        lineage=lineage,
        intended_use=intended_use,
        limitations=limitations,
        evaluation=report,
        gate_report=gate_report,
        approvals=tuple(approvals),
        sections=sections,
    )
