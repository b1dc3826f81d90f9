from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base, UTCDateTime, new_uuid, utcnow
from gateway.core.sealed_columns import SealedText


class Resource(Base):
    """A tenant: an ACS "communication resource" with two access keys."""

    __tablename__ = "resources"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    endpoint: Mapped[str] = mapped_column(String(255))
    # Host part of the endpoint, to try likely resources first when verifying a signature.
    endpoint_host: Mapped[str] = mapped_column(String(255), index=True)
    # Encrypted at rest (gateway/core/sealed_columns.py); the ORM reads the base64 key.
    primary_key: Mapped[str] = mapped_column(SealedText("resources.primary_key"))
    secondary_key: Mapped[str] = mapped_column(SealedText("resources.secondary_key"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    keys_rotated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
