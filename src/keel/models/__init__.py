"""Model packages: safe formats, signatures, requirements, validated loading.

``ModelService`` logs a model to a run as a package (flavor, file, signature,
requirements) and loads it back as a ``LoadedModel`` whose ``predict`` checks its input
against the signature. Importing this package loads no machine-learning library.
"""

from keel.models._check import UnseenCategoryWarning
from keel.models._flavors import FLAVORS
from keel.models._loaded import LoadedModel
from keel.models._service import ModelService

__all__ = ["FLAVORS", "LoadedModel", "ModelService", "UnseenCategoryWarning"]
