"""The model domain as plain values: signatures, packages, registered versions, URIs.

Contracts shared by packaging (``keel.models``), evaluation (``keel.evaluation``) and
the registry (``keel.registry``):

- a model package lives in a run's artifacts under a prefix (default ``model``), with a
  descriptor ``<prefix>/keel-model.json`` (``ModelInfo.to_dict()``);
- an evaluation logs ``evaluation/report.json`` to its run;
- a validation gate logs ``evaluation/gate.json`` and sets the run tag
  ``keel.gate`` to ``passed`` or ``failed`` (``GATE_TAG``), which the registry reads
  before it lets a version become ``champion``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.core._ids import is_id
from keel.errors import InvalidArgument

GATE_TAG = "keel.gate"
EVALUATION_ARTIFACT = "evaluation/report.json"
GATE_ARTIFACT = "evaluation/gate.json"
DESCRIPTOR = "keel-model.json"
DESCRIPTOR_VERSION = 1

_MODEL_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")


def validate_model_name(name: object) -> str:
    """A registered model name: 1-128 letters, digits, ``_ . -``; no ``/`` or ``..``."""
    if not isinstance(name, str) or not _MODEL_NAME_RE.match(name) or ".." in name:
        raise InvalidArgument(
            f"invalid model name {name!r}: use 1-128 letters, digits, '_', '.', '-', "
            "starting with a letter or digit, e.g. 'credit-approval'"
        )
    return name


def validate_alias(alias: object) -> str:
    """An alias such as ``champion``: a letter, then letters, digits, ``_ -``; not ``v3``."""
    if not isinstance(alias, str) or not _ALIAS_RE.match(alias) or re.fullmatch(r"v\d+", alias):
        raise InvalidArgument(
            f"invalid alias {alias!r}: start with a letter, then letters, digits, '_' or '-' "
            "(and not the form 'v3'), e.g. 'champion'"
        )
    return alias


@dataclass(frozen=True)
class ColumnSpec:
    """One input or output column: name, logical type, whether nulls/NaN are allowed."""

    name: str
    type: str  # "int", "float", "bool", "string", "category", "datetime"
    nullable: bool = False
    categories: tuple[str, ...] | None = None


@dataclass(frozen=True)
class ModelSignature:
    """What a model takes and returns, checked before every prediction."""

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[ColumnSpec, ...] = ()
    classes: tuple[Any, ...] | None = None  # classifier labels, in predict_proba order
    input_kind: str = "dataframe"  # what the model was fitted on: "dataframe" or "ndarray"

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [_column_to_dict(c) for c in self.inputs],
            "outputs": [_column_to_dict(c) for c in self.outputs],
            "classes": None if self.classes is None else list(self.classes),
            "input_kind": self.input_kind,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSignature:
        classes = data.get("classes")
        return cls(
            inputs=tuple(_column_from_dict(c) for c in data.get("inputs", ())),
            outputs=tuple(_column_from_dict(c) for c in data.get("outputs", ())),
            classes=None if classes is None else tuple(classes),
            input_kind=str(data.get("input_kind", "dataframe")),
        )


def _column_to_dict(column: ColumnSpec) -> dict[str, Any]:
    out: dict[str, Any] = {"name": column.name, "type": column.type, "nullable": column.nullable}
    if column.categories is not None:
        out["categories"] = list(column.categories)
    return out


def _column_from_dict(data: Mapping[str, Any]) -> ColumnSpec:
    categories = data.get("categories")
    return ColumnSpec(
        name=str(data["name"]),
        type=str(data["type"]),
        nullable=bool(data.get("nullable", False)),
        categories=None if categories is None else tuple(str(c) for c in categories),
    )


@dataclass(frozen=True)
class ModelInfo:
    """A logged model package: where it is, what it is, what it needs."""

    run_id: str
    artifact_path: str
    flavor: str  # "sklearn", "xgboost", "lightgbm", "pyfunc"
    format: str  # "skops", "xgboost-json", "lightgbm-text", "pickle"
    signature: ModelSignature | None
    requirements: tuple[str, ...]
    files: Mapping[str, str] = field(default_factory=dict)  # artifact name -> digest
    metadata: Mapping[str, Any] = field(default_factory=dict)
    trusted_types: tuple[str, ...] = ()  # skops types trusted at save time, passed at load
    # True when trusted_types lists every type of the file (beyond skops' primitive,
    # NumPy and SciPy lists); older packages left out skops' default estimator list.
    trusted_types_complete: bool = False
    model_class: str = ""  # e.g. "sklearn.pipeline.Pipeline"
    python_version: str = ""
    library_versions: Mapping[str, str] = field(default_factory=dict)  # distribution -> version
    created_at: float = 0.0

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.artifact_path}"

    def to_dict(self) -> dict[str, Any]:
        """The JSON form stored as ``<artifact_path>/keel-model.json``."""
        return {
            "format_version": DESCRIPTOR_VERSION,
            "run_id": self.run_id,
            "artifact_path": self.artifact_path,
            "flavor": self.flavor,
            "format": self.format,
            "model_class": self.model_class,
            "signature": None if self.signature is None else self.signature.to_dict(),
            "requirements": list(self.requirements),
            "files": dict(self.files),
            "trusted_types": list(self.trusted_types),
            "trusted_types_complete": self.trusted_types_complete,
            "python_version": self.python_version,
            "library_versions": dict(self.library_versions),
            "created_at": self.created_at,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelInfo:
        """Read a descriptor; raise ``InvalidArgument`` if it is not one this version reads."""
        version = data.get("format_version")
        if version != DESCRIPTOR_VERSION:
            raise InvalidArgument(
                f"model descriptor format_version {version!r} is not supported (this Keel "
                f"reads {DESCRIPTOR_VERSION}); load it with the Keel version that logged it"
            )
        try:
            signature = data.get("signature")
            return cls(
                run_id=str(data["run_id"]),
                artifact_path=str(data["artifact_path"]),
                flavor=str(data["flavor"]),
                format=str(data["format"]),
                signature=None if signature is None else ModelSignature.from_dict(signature),
                requirements=tuple(str(r) for r in data.get("requirements", ())),
                files={str(k): str(v) for k, v in data.get("files", {}).items()},
                metadata=dict(data.get("metadata", {})),
                trusted_types=tuple(str(t) for t in data.get("trusted_types", ())),
                trusted_types_complete=data.get("trusted_types_complete") is True,
                model_class=str(data.get("model_class", "")),
                python_version=str(data.get("python_version", "")),
                library_versions={
                    str(k): str(v) for k, v in data.get("library_versions", {}).items()
                },
                created_at=float(data.get("created_at", 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise InvalidArgument(
                f"model descriptor is malformed ({type(error).__name__}: {error}); "
                "log the model again"
            ) from None


@dataclass(frozen=True)
class ModelVersion:
    """A registered version of a model: a run's package under a name and number."""

    name: str
    version: int
    run_id: str
    source: str  # runs:/<id>/<path>
    created_at: float
    status: str = "active"  # "active", "deprecated", "archived"
    description: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    gate: str | None = None  # "passed", "failed" or None (never gated)

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"


@dataclass(frozen=True)
class ModelURI:
    """``runs:/<run_id>/<path>``, ``models:/<name>/<version>`` or ``models:/<name>@<alias>``."""

    scheme: str  # "runs" or "models"
    run_id: str | None = None
    path: str | None = None
    name: str | None = None
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: object) -> ModelURI:
        if not isinstance(text, str):
            raise InvalidArgument(f"model URI must be a string, got {type(text).__name__}")
        if text.startswith("runs:/"):
            run_id, _, path = text[len("runs:/") :].partition("/")
            if not is_id(run_id) or not path:
                raise InvalidArgument(
                    f"invalid model URI {text!r}; use runs:/<run_id>/model "
                    "(the run id is 32 hex characters)"
                )
            return cls("runs", run_id=run_id, path=path)
        if text.startswith("models:/"):
            rest = text[len("models:/") :]
            if "@" in rest:
                name, _, alias = rest.partition("@")
                return cls("models", name=validate_model_name(name), alias=validate_alias(alias))
            name, _, number = rest.partition("/")
            if not number.isdigit() or int(number) < 1:
                raise InvalidArgument(
                    f"invalid model URI {text!r}; use models:/NAME/3 or models:/NAME@champion"
                )
            return cls("models", name=validate_model_name(name), version=int(number))
        raise InvalidArgument(
            f"invalid model URI {text!r}; use runs:/<run_id>/model, models:/NAME/3 "
            "or models:/NAME@champion"
        )

    def __str__(self) -> str:
        if self.scheme == "runs":
            return f"runs:/{self.run_id}/{self.path}"
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}/{self.version}"
