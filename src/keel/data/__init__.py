"""Data: versioned datasets, schemas and profiles, validation, splits and lineage."""
