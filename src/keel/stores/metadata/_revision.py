"""The schema revision this version of Keel writes (Alembic's head), without SQLAlchemy."""

from __future__ import annotations

HEAD_REVISION = "0006"
