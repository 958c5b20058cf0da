"""Test kit for Keel and for authors of stores and plugins.

- ``keel.testing.fixtures``: pytest fixtures (an isolated ``KEEL_HOME``, a fresh
  PostgreSQL database per test session) — enable with
  ``pytest_plugins = ["keel.testing.fixtures"]``.
- ``keel.testing.conformance.MetadataStoreConformance``: the behaviour every metadata
  store must show; subclass it and provide a ``store`` fixture.
"""

from keel.testing._postgres import postgres_available, scratch_database

__all__ = ["postgres_available", "scratch_database"]
