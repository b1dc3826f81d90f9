from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base, UTCDateTime, utcnow


class Identity(Base):
    """An ACS user identity, ``8:acs:<resource id>_<uuid>``."""

    __tablename__ = "identities"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Every token carries the generation it was issued in; revoking bumps it, so all earlier
    # tokens stop verifying at once without keeping a deny-list.
    token_generation: Mapped[int] = mapped_column(Integer, default=0)
    tokens_revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
