"""``keel deploy``: create, change, inspect and delete deployments (traffic policies)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from keel.cli._output import errors_reported, print_json, print_table
from keel.errors import InvalidArgument

if TYPE_CHECKING:
    from keel.core._deployments import Deployment, DeploymentPolicy
    from keel.serving._deployments import DeploymentService, PolicyChange

app = typer.Typer(
    help="Deployments: named endpoints with a traffic policy over model versions.",
    no_args_is_help=True,
)

JSON = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NAME = Annotated[str, typer.Argument(help="The deployment's name, e.g. credit.")]
MODEL = Annotated[
    str | None,
    typer.Option(
        "--model",
        metavar="URI",
        help="The primary model: models:/NAME@ALIAS, models:/NAME/3 or runs:/ID/model.",
    ),
]
WEIGHT = Annotated[
    float | None, typer.Option("--weight", help="The primary route's weight in an A/B split.")
]
AB = Annotated[
    list[str] | None,
    typer.Option("--ab", metavar="URI=WEIGHT", help="Another route of an A/B split (repeatable)."),
]
CANARY = Annotated[
    str | None, typer.Option("--canary", metavar="URI", help="A model on probation.")
]
PERCENT = Annotated[
    float | None, typer.Option("--percent", help="The canary's percent of live traffic.")
]
MAX_ERROR = Annotated[
    float | None,
    typer.Option(
        "--max-error-increase",
        help="Roll the canary back when its error rate exceeds the primary's by more (0.01).",
    ),
]
MAX_LATENCY = Annotated[
    float | None,
    typer.Option(
        "--max-latency-ratio",
        help="Roll the canary back when its p95 latency exceeds the primary's times this (2).",
    ),
]
MIN_REQUESTS = Annotated[
    int | None,
    typer.Option("--min-requests", help="Requests on each side before judging the canary (100)."),
]
SHADOW = Annotated[
    str | None,
    typer.Option("--shadow", metavar="URI", help="A model that gets a copy of every request."),
]
DESCRIPTION = Annotated[
    str | None, typer.Option("--description", "-m", help="What the deployment is for.")
]
FROM_FILE = Annotated[
    Path | None,
    typer.Option(
        "--from-file",
        help="The whole policy as YAML or JSON (the 'policy' of `keel deploy show --json`).",
    ),
]
ACTOR = Annotated[str | None, typer.Option("--actor", help="Who makes the change (recorded).")]
REASON = Annotated[str | None, typer.Option("--reason", help="Why (recorded).")]


def _service() -> DeploymentService:
    from keel.context import get_context

    return get_context().deployments


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _variants(policy: DeploymentPolicy) -> str:
    from keel.serving._deployments import traffic_shares

    shares = traffic_shares(policy)
    return ", ".join(
        f"{variant}={uri} ({_share(shares.get(variant))})"
        for variant, uri in policy.models().items()
    )


def _share(share: float | None) -> str:
    return "copy" if share is None else f"{share:.4g}%"


def _change(
    model: str | None,
    weight: float | None,
    ab: list[str] | None,
    canary: str | None,
    percent: float | None,
    max_error_increase: float | None,
    max_latency_ratio: float | None,
    min_requests: int | None,
    shadow: str | None,
    no_ab: bool = False,
    no_canary: bool = False,
    no_shadow: bool = False,
) -> PolicyChange:
    from keel.serving._deployments import PolicyChange, parse_weighted

    return PolicyChange(
        model=model,
        weight=weight,
        ab=None if not ab else [parse_weighted(a) for a in ab],
        canary=canary,
        percent=percent,
        max_error_increase=max_error_increase,
        max_latency_ratio=max_latency_ratio,
        min_requests=min_requests,
        shadow=shadow,
        no_ab=no_ab,
        no_canary=no_canary,
        no_shadow=no_shadow,
    )


def _file_alone(from_file: Path | None, change: PolicyChange) -> None:
    if from_file is not None and not change.is_empty():
        raise InvalidArgument(
            "--from-file sets the whole policy; drop the other policy options, or drop --from-file"
        )


def _done(found: Deployment, as_json: bool, verb: str) -> None:
    if as_json:
        print_json(found.to_dict())
    else:
        typer.echo(
            f"{verb} deployment {found.name!r} at revision {found.revision}: "
            f"{found.policy.mode}; {_variants(found.policy)}"
        )


@app.command("create")
def create(
    name: NAME,
    model: MODEL = None,
    weight: WEIGHT = None,
    ab: AB = None,
    canary: CANARY = None,
    percent: PERCENT = None,
    max_error_increase: MAX_ERROR = None,
    max_latency_ratio: MAX_LATENCY = None,
    min_requests: MIN_REQUESTS = None,
    shadow: SHADOW = None,
    description: DESCRIPTION = None,
    from_file: FROM_FILE = None,
    actor: ACTOR = None,
    reason: REASON = None,
    as_json: JSON = False,
) -> None:
    """Create a deployment: one model, an A/B split, a canary, a shadow."""
    with errors_reported(as_json):
        from keel.serving._deployments import build_policy, read_policy_file

        change = _change(
            model,
            weight,
            ab,
            canary,
            percent,
            max_error_increase,
            max_latency_ratio,
            min_requests,
            shadow,
        )
        _file_alone(from_file, change)
        policy = read_policy_file(from_file) if from_file is not None else build_policy(change)
        found = _service().create(
            name, policy, description=description or "", actor=actor, reason=reason
        )
    _done(found, as_json, "created")


@app.command("update")
def update(
    name: NAME,
    model: MODEL = None,
    weight: WEIGHT = None,
    ab: AB = None,
    no_ab: Annotated[bool, typer.Option("--no-ab", help="Remove the A/B routes.")] = False,
    canary: CANARY = None,
    percent: PERCENT = None,
    max_error_increase: MAX_ERROR = None,
    max_latency_ratio: MAX_LATENCY = None,
    min_requests: MIN_REQUESTS = None,
    no_canary: Annotated[bool, typer.Option("--no-canary", help="Remove the canary.")] = False,
    shadow: SHADOW = None,
    no_shadow: Annotated[bool, typer.Option("--no-shadow", help="Remove the shadow.")] = False,
    description: DESCRIPTION = None,
    from_file: FROM_FILE = None,
    actor: ACTOR = None,
    reason: REASON = None,
    as_json: JSON = False,
) -> None:
    """Change a deployment's policy; the parts you leave out keep their current values."""
    with errors_reported(as_json):
        from keel.serving._deployments import read_policy_file

        change = _change(
            model,
            weight,
            ab,
            canary,
            percent,
            max_error_increase,
            max_latency_ratio,
            min_requests,
            shadow,
            no_ab,
            no_canary,
            no_shadow,
        )
        _file_alone(from_file, change)
        service = _service()
        if from_file is not None:
            found = service.update(
                name,
                read_policy_file(from_file),
                description=description,
                actor=actor,
                reason=reason,
            )
        else:
            found = service.set_policy(
                name, change, description=description, actor=actor, reason=reason
            )
    _done(found, as_json, "updated")


@app.command("show")
def show(name: NAME, as_json: JSON = False) -> None:
    """Show a deployment's policy and what each of its models resolves to now."""
    with errors_reported(as_json):
        view = _service().describe(name)
    if as_json:
        print_json(view.to_dict())
        return
    found = view.deployment
    print_table(
        f"Deployment {found.name}",
        ["field", "value"],
        [
            ("name", found.name),
            ("description", found.description),
            ("mode", found.policy.mode),
            ("revision", found.revision),
            ("created", _when(found.created_at)),
            ("updated", _when(found.updated_at)),
        ],
    )
    canary = found.policy.canary
    if canary is not None:
        print_table(
            "Canary rollback rule",
            ["max error-rate increase", "max p95 latency ratio", "min requests"],
            [(canary.max_error_rate_increase, canary.max_latency_ratio, canary.min_requests)],
        )
    print_table(
        "Variants",
        ["variant", "role", "traffic", "model", "serves", "status", "problem"],
        [
            (
                v.variant,
                v.role,
                _share(v.traffic),
                v.uri,
                v.resolved if v.resolved == v.source else f"{v.resolved} ({v.source})",
                v.status or "",
                v.problem or "",
            )
            for v in view.variants
        ],
    )


@app.command("list")
def list_deployments(as_json: JSON = False) -> None:
    """List deployments with their mode, revision and models."""
    with errors_reported(as_json):
        found = _service().list()
    if as_json:
        print_json([d.to_dict() for d in found])
        return
    print_table(
        f"Deployments ({len(found)})",
        ["deployment", "mode", "revision", "models", "updated", "description"],
        [
            (
                d.name,
                d.policy.mode,
                d.revision,
                _variants(d.policy),
                _when(d.updated_at),
                d.description,
            )
            for d in found
        ],
    )


@app.command("history")
def history(name: NAME, as_json: JSON = False) -> None:
    """Show every change of a deployment's policy, rollbacks included."""
    with errors_reported(as_json):
        events = _service().history(name)
    if as_json:
        print_json([e.to_dict() for e in events])
        return
    print_table(
        f"History of deployment {name}",
        ["revision", "when", "kind", "actor", "reason", "mode", "models"],
        [
            (
                e.revision,
                _when(e.at),
                e.kind,
                e.actor or "",
                e.reason or "",
                e.policy.mode,
                _variants(e.policy),
            )
            for e in events
        ],
    )


@app.command("delete")
def delete(
    name: NAME,
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: delete it and its history.")] = False,
    as_json: JSON = False,
) -> None:
    """Delete a deployment and its history."""
    with errors_reported(as_json):
        if not yes:
            raise InvalidArgument(
                f"deleting deployment {name!r} removes it and its history; pass --yes to confirm"
            )
        _service().delete(name)
    if as_json:
        print_json({"deleted": name})
    else:
        typer.echo(f"deleted deployment {name!r}")
