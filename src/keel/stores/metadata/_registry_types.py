"""Plain values the model registry store returns, and the alias-history replay."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["AliasMove", "Approval", "InputDataset", "RegisteredModel", "previous_holder"]


@dataclass(frozen=True)
class RegisteredModel:
    """A registered model as listed: its versions' count, latest number and aliases."""

    name: str
    description: str
    created_at: float
    latest_version: int
    version_count: int
    aliases: Mapping[str, int]


@dataclass(frozen=True)
class AliasMove:
    """One entry of an alias's history (append-only)."""

    alias: str
    action: str  # "set", "rollback" or "delete"
    from_version: int | None
    to_version: int | None
    actor: str | None
    reason: str | None
    override: bool
    at: float


@dataclass(frozen=True)
class Approval:
    """An approver's recorded decision to give a version an alias, or to override its gate."""

    version: int
    alias: str
    kind: str  # "approval" or "override"
    approver: str
    reason: str
    gate: str | None
    at: float


@dataclass(frozen=True)
class InputDataset:
    """A dataset version a run logged as an input."""

    id: str
    name: str
    version: int
    digest: str

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


def previous_holder(history: Sequence[AliasMove]) -> int | None:
    """The version an alias held before its current one, replaying its history.

    Each "set" pushes a version, each "rollback" pops the current one, a "delete"
    clears the stack; so repeated rollbacks walk further back instead of toggling.
    """
    stack: list[int] = []
    for move in history:
        if move.action == "delete":
            stack.clear()
            continue
        if move.action == "rollback" and stack:
            stack.pop()
        if move.to_version is not None and (not stack or stack[-1] != move.to_version):
            stack.append(move.to_version)
    return stack[-2] if len(stack) >= 2 else None
