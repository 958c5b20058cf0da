"""The model registry: versions, aliases, approval, lineage and model cards.

``RegistryService(ModelRegistryStore(engine), tracking)`` registers a run's model
package (``runs:/<id>/model``) as the next version of a name, with gapless, race-safe
numbers on SQLite and PostgreSQL; moves aliases (``champion`` only after a passed
validation gate or a recorded override) with their history; rolls back, archives and
deprecates; and reports lineage and model cards.
"""

from keel.registry._card import ModelCard
from keel.registry._lineage import Lineage
from keel.registry._service import GATED_ALIASES, RegistryService, parse_version_ref
from keel.stores.metadata._registry import (
    AliasMove,
    Approval,
    InputDataset,
    ModelRegistryStore,
    RegisteredModel,
)
from keel.stores.metadata._registry_search import MODEL_ATTRIBUTES, MODEL_STATUSES

__all__ = [
    "GATED_ALIASES",
    "MODEL_ATTRIBUTES",
    "MODEL_STATUSES",
    "AliasMove",
    "Approval",
    "InputDataset",
    "Lineage",
    "ModelCard",
    "ModelRegistryStore",
    "RegisteredModel",
    "RegistryService",
    "parse_version_ref",
]
