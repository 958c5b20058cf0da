"""Validation results and their renderings: dict/JSON, a Rich table, self-contained HTML.

The HTML is built with ``html.escape`` on every value that came from data or a schema
(column names, observed values, messages), so a column named ``<script>`` renders as
text. It has no external assets: one file that can be attached to a CI run.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["ExpectationResult", "ValidationReport"]


@dataclass(frozen=True)
class ExpectationResult:
    """One checked expectation; ``status`` is passed, failed or skipped."""

    expectation: str
    column: str | None
    status: str
    observed: Any
    expected: Any
    message: str = ""

    @property
    def passed(self) -> bool:
        """Skipped expectations do not fail a report."""
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return {
            "expectation": self.expectation,
            "column": self.column,
            "passed": self.passed,
            "status": self.status,
            "observed": _plain(self.observed),
            "expected": _plain(self.expected),
            "message": self.message,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    if hasattr(value, "item"):  # NumPy scalars
        return _plain(value.item())
    return str(value)


@dataclass
class ValidationReport:
    """Every expectation checked on one target; ``passed`` when none failed."""

    target: str
    results: list[ExpectationResult]
    rows: int = 0
    created_at: float = field(default_factory=lambda: dt.datetime.now(dt.UTC).timestamp())

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[ExpectationResult]:
        return [r for r in self.results if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        counts = {
            s: sum(r.status == s for r in self.results) for s in ("passed", "failed", "skipped")
        }
        return {
            "target": self.target,
            "passed": self.passed,
            "rows": self.rows,
            "created_at": self.created_at,
            "summary": counts,
            "results": [r.to_dict() for r in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, default=str)

    def to_html(self, path: Path | str) -> Path:
        """Write a self-contained HTML report; returns its path."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(self), encoding="utf-8")
        return out

    def __rich__(self) -> Table:
        from rich.table import Table
        from rich.text import Text

        verdict = "passed" if self.passed else "FAILED"
        table = Table(title=f"Validation of {self.target}: {verdict}", title_justify="left")
        for name in ("status", "expectation", "column", "observed", "expected", "message"):
            table.add_column(name, overflow="fold")
        style = {"passed": "green", "failed": "bold red", "skipped": "yellow"}
        for r in sorted(self.results, key=_order):
            table.add_row(
                Text(r.status, style=style[r.status]),
                Text(r.expectation),
                Text(r.column or ""),
                Text(_short(r.observed)),
                Text(_short(r.expected)),
                Text(r.message),
            )
        return table


def _order(result: ExpectationResult) -> tuple[int, str, str]:
    rank = {"failed": 0, "skipped": 1, "passed": 2}[result.status]
    return rank, result.column or "", result.expectation


def _short(value: Any, limit: int = 80) -> str:
    text = (
        ""
        if value is None
        else (value if isinstance(value, str) else json.dumps(_plain(value), default=str))
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"


_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1f24}
h1{font-size:1.3rem} .verdict{padding:.2rem .6rem;border-radius:4px;color:#fff}
.ok{background:#1a7f37} .bad{background:#cf222e}
table{border-collapse:collapse;width:100%;margin-top:1rem}
th,td{border-bottom:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} td.status-failed{color:#cf222e;font-weight:600}
td.status-passed{color:#1a7f37} td.status-skipped{color:#9a6700}
code{font-size:12px;word-break:break-all}
""".strip()


def render_html(report: ValidationReport) -> str:
    """The report as one HTML document with every data-derived string escaped."""
    e = html.escape
    data = report.to_dict()
    summary = data["summary"]
    verdict = "passed" if report.passed else "failed"
    when = dt.datetime.fromtimestamp(report.created_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    rows = []
    for r in sorted(report.results, key=_order):
        rows.append(
            "<tr>"
            f'<td class="status-{e(r.status)}">{e(r.status)}</td>'
            f"<td>{e(r.expectation)}</td>"
            f"<td>{e(r.column or '')}</td>"
            f"<td><code>{e(_short(r.observed, 400))}</code></td>"
            f"<td><code>{e(_short(r.expected, 400))}</code></td>"
            f"<td>{e(r.message)}</td>"
            "</tr>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Keel validation: {e(report.target)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Validation of <code>{e(report.target)}</code> "
        f'<span class="verdict {"ok" if report.passed else "bad"}">{verdict}</span></h1>'
        f"<p>{report.rows} rows · {summary['passed']} passed · {summary['failed']} failed · "
        f"{summary['skipped']} skipped · {e(when)}</p>"
        "<table><thead><tr><th>status</th><th>expectation</th><th>column</th>"
        "<th>observed</th><th>expected</th><th>what to do</th></tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table></body></html>\n"
    )
