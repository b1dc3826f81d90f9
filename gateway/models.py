"""Imports every domain's models so that Base.metadata (and Alembic) sees all tables."""

from gateway.identity.models import Identity
from gateway.resources.models import Resource

__all__ = ["Identity", "Resource"]
