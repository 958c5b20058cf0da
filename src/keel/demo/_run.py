"""``keel demo``: generate the world, train a small grid of models, track every run.

Stage by stage this grows into the closed loop of DESIGN.md; today it covers data
versioning and validation, tracking, evaluation, gating, the registry and serving.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from keel import _fluent as keel
from keel import _fluent_data as keel_data
from keel import _fluent_models as keel_models
from keel.context import get_context
from keel.data._schema import Schema
from keel.data._validate import validate
from keel.demo._world import CATEGORICAL, NUMERIC, TARGET, generate_credit_data
from keel.evaluation import Gate

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console
    from sklearn.pipeline import Pipeline

    from keel.core._data import DatasetVersion
    from keel.data._split import SplitResult

EXPERIMENT = "credit-demo"

GRID: dict[str, dict[str, list[Any]]] = {
    "logistic_regression": {"C": [0.1, 1.0]},
    "random_forest": {"n_estimators": [60], "max_depth": [6, 12]},
    "gradient_boosting": {"learning_rate": [0.05, 0.1], "max_iter": [150]},
}


_SHORT = {
    "logistic_regression": "lr",
    "random_forest": "rf",
    "gradient_boosting": "gb",
    "n_estimators": "trees",
    "max_depth": "depth",
    "learning_rate": "eta",
    "max_iter": "iters",
}


def _pipeline(family: str, params: dict[str, Any], seed: int) -> Pipeline:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    features = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ]
    )
    model: Any
    if family == "logistic_regression":
        model = LogisticRegression(max_iter=2000, **params)
    elif family == "random_forest":
        model = RandomForestClassifier(random_state=seed, n_jobs=-1, **params)
    else:
        model = HistGradientBoostingClassifier(random_state=seed, **params)
    return Pipeline([("features", features), ("model", model)])


def _score(model: Pipeline, x: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score

    proba = model.predict_proba(x)[:, 1]
    predicted = (proba >= 0.5).astype(int)
    return {
        "auc": float(roc_auc_score(y, proba)),
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted)),
        "log_loss": float(log_loss(y, proba)),
    }


def _splits(parts: SplitResult) -> list[tuple[DatasetVersion, pd.DataFrame]]:
    frames = {"train": parts.train, "val": parts.val, "test": parts.test}
    return [(v, frame) for k, v in parts.versions.items() if (frame := frames[k]) is not None]


GATE = """\
metric: auc
rules:
  - auc >= 0.75
  - min(recall by gender) >= 0.70
  - demographic_parity_difference <= 0.10
beat_baseline: true
champion_tolerance: 0.01
"""
MODEL = "credit-approval"


def _release(
    best: dict[str, Any], parts: SplitResult, home: Path, console: Console
) -> dict[str, Any]:
    """Evaluate the best model on the test split per slice, gate it, register, promote."""
    from rich.table import Table
    from rich.text import Text

    tracking = get_context().tracking
    model = keel_models.load_model(best["uri"])
    report = keel_models.evaluate(
        model, parts.test, TARGET, slices=["gender", "age"], bootstrap=100, log=False
    )
    report.log_to(tracking, best["run_id"])
    gate = Gate.from_yaml(GATE).check(report)
    gate.log_to(tracking, best["run_id"])
    version = keel_models.register_model(best["uri"], MODEL, tags={"domain": "credit"})
    reports = home / "reports"
    report_path = report.to_html(reports / "evaluation.html")
    table = Table(title=f"Gate for {MODEL} v{version.version}", title_justify="left")
    for column in ("rule", "observed", "result"):
        table.add_column(column)
    for reason in gate.reasons:
        verdict = {"passed": "[green]pass[/green]", "failed": "[red]FAIL[/red]"}.get(
            reason.status, reason.status
        )
        observed = "" if reason.observed is None else f"{reason.observed:.4f}"
        table.add_row(Text(reason.rule), observed, verdict)
    console.print(table)
    if gate.passed:
        keel_models.set_alias(MODEL, "champion", version.version, actor="keel-demo")
        console.print(f"[green]{MODEL} v{version.version} is champion[/green]")
    else:
        console.print(f"[yellow]{MODEL} v{version.version} failed its gate; not promoted[/yellow]")
    card = get_context().registry.model_card(
        MODEL,
        version.version,
        intended_use="Demo: ranking synthetic credit applications for manual review.",
        limitations="Trained on synthetic data; gender carries a planted bias.",
    )
    card_path = reports / "model-card.html"
    card_path.write_text(card.to_html(), encoding="utf-8")
    console.print(f"evaluation:     {report_path}")
    console.print(f"model card:     {card_path}")
    return {
        "model": MODEL,
        "model_version": version.version,
        "gate_passed": gate.passed,
        "champion": gate.passed,
        "test_auc": report.metrics.get("auc"),
        "evaluation_report": str(report_path),
        "model_card": str(card_path),
    }


def run_demo(rows: int = 50_000, seed: int = 0, quiet: bool = False) -> dict[str, Any]:
    """Run the demo and return its summary (also printed unless ``quiet``)."""
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    console = Console(quiet=quiet)
    settings = get_context().settings
    console.print(f"[bold]Keel demo[/bold]: synthetic credit approval, {rows:,} applicants")
    data = generate_credit_data(rows, seed=seed)

    # 1-2. Version the generated data and validate it against its inferred schema.
    workdir = settings.home / "demo"
    workdir.mkdir(parents=True, exist_ok=True)
    source = workdir / "credit.parquet"
    data.to_parquet(source, index=False)
    version = keel_data.add(source, "credit", message=f"synthetic world, seed {seed}")
    schema = Schema.from_dict(version.schema) if version.schema else None
    report = validate(source, schema=schema)
    report_path = report.to_html(settings.home / "reports" / "credit-validation.html")
    verdict = "[green]passed[/green]" if report.passed else "[red]FAILED[/red]"
    console.print(
        f"data: {version.ref} ({version.file_count} file, {version.size:,} bytes), "
        f"validation {verdict}, approval rate {data[TARGET].mean():.1%}"
    )

    # 3. Split with class balance and leakage checks; each split becomes a version.
    parts = keel_data.split(data, target=TARGET, test=0.2, val=0.1, seed=seed, parent=version)
    leakage = "no leakage found" if parts.leakage.passed else "LEAKAGE FOUND"
    console.print(
        "splits: "
        + ", ".join(f"{v.ref} ({len(frame):,} rows)" for v, frame in _splits(parts))
        + f"; {leakage}"
    )
    assert parts.val is not None  # val=0.1 above
    x_train, y_train = parts.train.drop(columns=[TARGET]), parts.train[TARGET]
    x_test, y_test = parts.val.drop(columns=[TARGET]), parts.val[TARGET]
    trials = [
        (family, dict(zip(space, values, strict=True)))
        for family, space in GRID.items()
        for values in itertools.product(*space.values())
    ]
    results: list[dict[str, Any]] = []
    with (
        Progress(console=console, transient=True) as progress,
        keel.start_run(experiment=EXPERIMENT, run_name=f"grid-seed{seed}") as parent,
    ):
        keel.log_input(version)
        keel.log_params({"rows": rows, "seed": seed, "trials": len(trials)})
        task = progress.add_task("training", total=len(trials))
        for family, params in trials:
            name = f"{_SHORT[family]}-" + "-".join(
                f"{_SHORT.get(k, k)}{v}" for k, v in params.items()
            )
            progress.update(task, description=f"training {name}")
            with keel.start_run(run_name=name, tags={"family": family}) as run:
                keel.log_input(parts.versions["train"])
                keel.log_input(parts.versions["val"])
                keel.log_params({"model": family, **params})
                started = time.perf_counter()
                model = _pipeline(family, params, seed).fit(x_train, y_train)
                fit_seconds = time.perf_counter() - started
                scores = _score(model, x_test, y_test)
                keel.log_metrics({**scores, "fit_seconds": fit_seconds})
                package = keel_models.log_model(model, input_example=x_train.iloc[:5])
                keel.log_dict(
                    {"numeric": NUMERIC, "categorical": CATEGORICAL, "target": TARGET},
                    "features.json",
                )
            results.append(
                {"run_id": run.id, "name": name, "family": family, "uri": package.uri, **scores}
            )
            progress.advance(task)
        best = max(results, key=lambda r: r["auc"])
        keel.log_metrics({"best_auc": best["auc"]})
        keel.set_tags({"best_run": best["run_id"]})
    results.sort(key=lambda r: r["auc"], reverse=True)

    table = Table(title=f"Experiment '{EXPERIMENT}': {len(results)} runs", title_justify="left")
    for column in ("run", "AUC", "accuracy", "F1", "log loss"):
        table.add_column(column)
    for r in results:
        table.add_row(
            r["name"],
            f"{r['auc']:.4f}",
            f"{r['accuracy']:.4f}",
            f"{r['f1']:.4f}",
            f"{r['log_loss']:.4f}",
        )
    console.print(table)
    console.print(f"best: [bold]{best['name']}[/bold] (run {best['run_id']})")
    release = _release(best, parts, settings.home, console)
    serving = monitoring = None
    if release["champion"]:  # 5. serve the champion and send it traffic
        from keel.demo._monitor import run_monitor
        from keel.demo._serve import serve_and_burst

        drifted = generate_credit_data(max(rows // 10, 2000), seed=seed + 1, drift=1.0)
        serving = serve_and_burst(MODEL, parts.test, TARGET, console, drifted=drifted)
        # 7. the monitor compares the traffic with the training data and alerts
        monitoring = run_monitor(serving["deployment"], parts.versions["train"].ref, console)
    console.print(f"data:           keel data lineage {version.ref}")
    console.print(f"validation:     {report_path}")
    console.print(f"metadata store: {settings.store_uri}")
    console.print(f"artifacts:      {settings.artifact_uri}")
    console.print(f"explore:        keel runs list -e {EXPERIMENT}")
    return {
        "experiment": EXPERIMENT,
        "parent_run_id": parent.id,
        "best": best,
        "runs": results,
        "dataset": version.ref,
        "splits": {k: v.ref for k, v in parts.versions.items()},
        "validation_passed": report.passed,
        "validation_report": str(report_path),
        "leakage_passed": parts.leakage.passed,
        **release,
        "serving": serving,
        "monitoring": monitoring,
        "store_uri": settings.store_uri,
        "artifact_uri": settings.artifact_uri,
    }
