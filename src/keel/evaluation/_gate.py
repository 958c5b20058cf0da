"""The validation gate: declarative thresholds that a model must meet to be promoted.

A gate is YAML::

    metric: auc                  # primary metric, for the baseline and champion checks
    rules:
      - auc >= 0.80
      - min(recall by gender) >= 0.70
      - demographic_parity_difference <= 0.10
    beat_baseline: true          # the primary metric must beat the baseline's
    champion_tolerance: 0.01     # at most this much worse than the champion

``Gate.check(report, champion_report)`` returns every reason, passed or not. The champion
must have been evaluated by the caller on the same holdout: its report's data digest
must equal the candidate's, or the comparison is refused. Slice rules (``min(recall by
gender)``) consider groups with at least the report's ``min_support`` rows. Without a
champion report the champion check is skipped (the first model has no champion).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel.core._models import GATE_ARTIFACT, GATE_TAG
from keel.errors import InvalidArgument
from keel.evaluation._metrics import HIGHER_IS_BETTER
from keel.evaluation._report import EvaluationReport, plain
from keel.evaluation._rules import (
    ALIASES,
    PERFORMANCE_METRICS,
    Rule,
    parse_rule,
)

if TYPE_CHECKING:
    from keel.tracking._service import TrackingService

__all__ = ["Gate", "GateResult", "RuleResult"]

_KEYS = ("metric", "rules", "beat_baseline", "champion_tolerance")


@dataclass(frozen=True)
class RuleResult:
    """One reason: what was checked, what was seen, against what, and the verdict."""

    rule: str
    kind: str  # "rule", "baseline" or "champion"
    status: str  # "passed", "failed" or "skipped"
    observed: float | None
    threshold: float | None
    message: str

    @property
    def passed(self) -> bool:
        return self.status != "failed"

    def to_dict(self) -> dict[str, Any]:
        return plain(  # type: ignore[no-any-return]
            {
                "rule": self.rule,
                "kind": self.kind,
                "status": self.status,
                "passed": self.passed,
                "observed": self.observed,
                "threshold": self.threshold,
                "message": self.message,
            }
        )


@dataclass(frozen=True)
class GateResult:
    """The gate's verdict with every reason; ``passed`` when no reason failed."""

    reasons: tuple[RuleResult, ...]
    metric: str
    data_digest: str
    champion_digest: str | None = None

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.reasons)

    @property
    def failures(self) -> list[RuleResult]:
        return [r for r in self.reasons if not r.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": "passed" if self.passed else "failed",
            "metric": self.metric,
            "data_digest": self.data_digest,
            "champion_digest": self.champion_digest,
            "reasons": [r.to_dict() for r in self.reasons],
        }

    def log_to(self, tracking: TrackingService, run_id: str) -> None:
        """Write ``evaluation/gate.json`` and set the run tag ``keel.gate``."""
        body = json.dumps(self.to_dict(), indent=2, allow_nan=False).encode("utf-8")
        tracking.log_bytes(run_id, body, GATE_ARTIFACT)
        tracking.set_tags(run_id, {GATE_TAG: "passed" if self.passed else "failed"})


@dataclass(frozen=True)
class Gate:
    """Thresholds, a baseline check and a champion check; build with ``from_yaml``."""

    rules: tuple[Rule, ...] = ()
    metric: str | None = None
    beat_baseline: bool = False
    champion_tolerance: float | None = None
    source: str = field(default="<gate>", compare=False)

    @classmethod
    def from_yaml(cls, source: str | Path) -> Gate:
        """A gate from a YAML file path or YAML text."""
        import yaml

        where = "<text>"
        text: str
        if isinstance(source, Path) or _names_file(source):
            where = str(source)
            try:
                text = Path(source).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise InvalidArgument(f"cannot read gate file {where!r}: {exc}") from exc
        else:
            text = source
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise InvalidArgument(
                f"gate {where} is not valid YAML{at}; quote rules that start with a special "
                "character, as in - 'auc >= 0.8'"
            ) from exc
        if not isinstance(data, Mapping):
            raise InvalidArgument(
                f"gate {where} must be a YAML mapping with {', '.join(_KEYS)}"
                + ("" if where != "<text>" else " (or a path to such a file)")
            )
        return cls.from_dict(data, source=where)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<gate>") -> Gate:
        unknown = sorted(str(k) for k in data if k not in _KEYS)
        if unknown:
            raise InvalidArgument(
                f"gate {source}: unknown key(s) {', '.join(unknown)}; use {', '.join(_KEYS)}"
            )
        rules = data.get("rules") or []
        if not isinstance(rules, list):
            raise InvalidArgument(
                f"gate {source}: rules must be a list of strings such as - auc >= 0.8"
            )
        parsed = tuple(parse_rule(text, i) for i, text in enumerate(rules, start=1))
        metric = data.get("metric")
        if metric is not None:
            name = ALIASES.get(str(metric).lower(), str(metric).lower())
            if not isinstance(metric, str) or name not in PERFORMANCE_METRICS:
                raise InvalidArgument(
                    f"gate {source}: unknown primary metric {metric!r}; use one of "
                    + ", ".join(PERFORMANCE_METRICS)
                )
            metric = name
        beat = data.get("beat_baseline", False)
        if not isinstance(beat, bool):
            raise InvalidArgument(f"gate {source}: beat_baseline must be true or false")
        tolerance = data.get("champion_tolerance")
        if tolerance is not None and (
            isinstance(tolerance, bool)
            or not isinstance(tolerance, int | float)
            or not math.isfinite(tolerance)
            or tolerance < 0
        ):
            raise InvalidArgument(
                f"gate {source}: champion_tolerance must be a non-negative number such as "
                f"0.01, got {tolerance!r}"
            )
        if not parsed and not beat and tolerance is None:
            raise InvalidArgument(
                f"gate {source} checks nothing; add rules, beat_baseline: true or "
                "champion_tolerance"
            )
        tol = None if tolerance is None else float(tolerance)
        return cls(parsed, metric, beat, tol, source)

    # checking ---------------------------------------------------------------------------

    def check(
        self, report: EvaluationReport, champion_report: EvaluationReport | None = None
    ) -> GateResult:
        """Every rule, the baseline and the champion checks against ``report``."""
        metric = self.metric or report.primary_metric
        if metric not in report.overall:
            raise InvalidArgument(
                f"gate {self.source}: the primary metric {metric!r} is not a metric of this "
                f"{report.task} report; set metric: to one of {', '.join(report.overall)}"
            )
        reasons = [self._rule(rule, i, report) for i, rule in enumerate(self.rules, start=1)]
        if self.beat_baseline:
            reasons.append(_baseline(metric, report))
        champion_digest = None
        if champion_report is not None:
            _same_holdout(report, champion_report)
            champion_digest = champion_report.data_digest
            reasons.append(_champion(metric, report, champion_report, self.champion_tolerance))
        elif self.champion_tolerance is not None:
            reasons.append(
                RuleResult(
                    f"{metric} within {self.champion_tolerance} of the champion",
                    "champion",
                    "skipped",
                    report.metrics.get(metric),
                    None,
                    "no champion report was given (no champion yet): skipped",
                )
            )
        return GateResult(tuple(reasons), metric, report.data_digest, champion_digest)

    def _rule(self, rule: Rule, index: int, report: EvaluationReport) -> RuleResult:
        where = f"gate rule {index} {rule.text!r}"
        try:
            if rule.by is None:
                observed = report.value(rule.metric)
                detail = ""
                missing = None if observed is not None else report.why_missing(rule.metric)
            else:
                observed, detail, missing = _aggregate(rule, report)
        except InvalidArgument as exc:
            raise InvalidArgument(f"{where}: {exc.message}") from exc
        label = rule.metric if rule.by is None else f"{rule.agg}({rule.metric} by {rule.by})"
        if observed is None:
            return RuleResult(
                rule.text,
                "rule",
                "failed",
                None,
                rule.threshold,
                f"{label} is unavailable: {missing}",
            )
        ok = rule.holds(observed)
        verdict = "passed" if ok else "failed"
        message = f"{label} = {observed:.4g}{detail} {rule.op} {rule.threshold:g}: {verdict}"
        return RuleResult(rule.text, "rule", verdict, observed, rule.threshold, message)


def _names_file(text: str) -> bool:
    if "\n" in text:
        return False
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # too long for a path, or a NUL: it is YAML text
        return False


def _aggregate(rule: Rule, report: EvaluationReport) -> tuple[float | None, str, str | None]:
    """The min or max of a metric over a slice's groups with enough rows."""
    assert rule.by is not None
    if rule.metric not in report.overall:
        report.value(rule.metric)  # raises: the metric is not one of this task's
    support = int(report.params.get("min_support", 0) or 0)
    groups = report.slice_metric(rule.metric, rule.by)
    usable = [
        (s.value, s.count, e.value) for s, e in groups if e.value is not None and s.count >= support
    ]
    skipped = [s.value for s, e in groups if e.value is None or s.count < support]
    note = f"; skipped {', '.join(skipped)} (n < {support} or undefined)" if skipped else ""
    if not usable:
        return None, "", f"no group of {rule.by} has {support}+ rows and a defined value{note}"
    pick = min if rule.agg == "min" else max
    value, count, observed = pick(usable, key=lambda g: g[2])
    return observed, f" (at {value}, n={count}{note})", None


def _better(metric: str, a: float, b: float) -> bool:
    return a > b if metric in HIGHER_IS_BETTER else a < b


def _baseline(metric: str, report: EvaluationReport) -> RuleResult:
    observed = report.metrics.get(metric)
    base = report.baseline_metrics.get(metric)
    rule = f"{metric} beats the baseline"
    if report.baseline is None or base is None:
        why = (
            "the report has no baseline; evaluate with baseline='dummy'"
            if report.baseline is None
            else f"the baseline's {metric} is undefined"
        )
        return RuleResult(rule, "baseline", "failed", observed, base, why)
    if observed is None:
        return RuleResult(
            rule,
            "baseline",
            "failed",
            None,
            base,
            f"{metric} is unavailable: {report.why_missing(metric)}",
        )
    ok = _better(metric, observed, base)
    verdict = "passed" if ok else "failed"
    relation = "better than" if ok else "not better than"
    message = (
        f"{metric} = {observed:.4g} is {relation} the baseline ({report.baseline}) "
        f"{base:.4g}: {verdict}"
    )
    return RuleResult(rule, "baseline", verdict, observed, base, message)


def _same_holdout(report: EvaluationReport, champion: EvaluationReport) -> None:
    if champion.data_digest != report.data_digest:
        raise InvalidArgument(
            "the champion's report was computed on different data (digest "
            f"{champion.data_digest[:19]}… vs {report.data_digest[:19]}…); evaluate the "
            "champion on the same holdout as the candidate and pass that report"
        )
    if (champion.task, champion.target) != (report.task, report.target):
        raise InvalidArgument(
            f"the champion's report is for {champion.task} on {champion.target!r}, the "
            f"candidate's for {report.task} on {report.target!r}; compare like with like"
        )


def _champion(
    metric: str, report: EvaluationReport, champion: EvaluationReport, tolerance: float | None
) -> RuleResult:
    tol = 0.0 if tolerance is None else tolerance
    observed = report.metrics.get(metric)
    best = champion.metrics.get(metric)
    rule = f"{metric} within {tol:g} of the champion"
    if observed is None or best is None:
        who = "candidate" if observed is None else "champion"
        return RuleResult(
            rule,
            "champion",
            "failed",
            observed,
            best,
            f"the {who}'s {metric} is unavailable; cannot compare",
        )
    higher = metric in HIGHER_IS_BETTER
    floor = best - tol if higher else best + tol
    ok = observed >= floor if higher else observed <= floor
    verdict = "passed" if ok else "failed"
    message = (
        f"{metric} = {observed:.4g} vs champion {best:.4g} (tolerance {tol:g}, "
        f"{'at least' if higher else 'at most'} {floor:.4g}): {verdict}"
    )
    return RuleResult(rule, "champion", verdict, observed, floor, message)
