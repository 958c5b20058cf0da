"""The model registry: versions, aliases, approval, lineage and model cards."""
