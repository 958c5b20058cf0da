"""Model packages: safe formats, signatures, requirements, validated loading.

``ModelService`` logs a model to a run as a package (flavor, file, signature,
requirements) and loads it back as a ``LoadedModel`` whose ``predict`` checks its input
against the signature. Importing this package loads no machine-learning library, and
each name loads on first use: loading a package never imports what logging one needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.core._lazy import lazy_exports

if TYPE_CHECKING:
    from keel.models._check import UnseenCategoryWarning
    from keel.models._flavors import FLAVORS
    from keel.models._loaded import LoadedModel
    from keel.models._service import ModelService

__all__ = ["FLAVORS", "LoadedModel", "ModelService", "UnseenCategoryWarning"]

__getattr__ = lazy_exports(
    __name__,
    {
        "FLAVORS": "keel.models._flavors",
        "LoadedModel": "keel.models._loaded",
        "ModelService": "keel.models._service",
        "UnseenCategoryWarning": "keel.models._check",
    },
)
