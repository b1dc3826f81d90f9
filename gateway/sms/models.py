"""SMS tables: SMPP connections and routes, outgoing messages and their segments, opt-outs,
receipts that arrived before their submit_sm_resp was stored, and inbound messages."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.sql.expression import false

from gateway.core.db import Base, UTCDateTime, new_uuid, utcnow
from gateway.core.sealed_columns import SealedText
from gateway.sms.lifecycle import SegmentSubmitState, SmsState


class SmppConnection(Base):
    """One SMPP account at an SMSC; the SMPP process keeps one persistent bind per row."""

    __tablename__ = "smpp_connections"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    tls: Mapped[bool] = mapped_column(Boolean, default=False)
    system_id: Mapped[str] = mapped_column(String(16))
    password: Mapped[str] = mapped_column(SealedText("smpp_connections.password"))  # encrypted at rest
    system_type: Mapped[str] = mapped_column(String(13), default="")
    bind_mode: Mapped[str] = mapped_column(String(24), default="transceiver")  # or transmitter+receiver
    source_ton: Mapped[int] = mapped_column(Integer, default=1)
    source_npi: Mapped[int] = mapped_column(Integer, default=1)
    dest_ton: Mapped[int] = mapped_column(Integer, default=1)
    dest_npi: Mapped[int] = mapped_column(Integer, default=1)
    window_size: Mapped[int] = mapped_column(Integer, default=10)
    max_submits_per_second: Mapped[float] = mapped_column(default=0.0)  # 0: unlimited
    enquire_link_interval: Mapped[float] = mapped_column(default=30.0)
    reconnect_backoff_initial: Mapped[float] = mapped_column(default=1.0)
    reconnect_backoff_max: Mapped[float] = mapped_column(default=10.0)
    default_data_coding: Mapped[str] = mapped_column(String(8), default="auto")  # auto | gsm7 | ucs2
    # How this SMSC writes message ids in submit_sm_resp and in receipts (as-is | hex | decimal):
    # many answer in hex and quote the id in decimal in the receipt.
    resp_id_format: Mapped[str] = mapped_column(String(8), default="as-is")
    receipt_id_format: Mapped[str] = mapped_column(String(8), default="as-is")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SmppRoute(Base):
    """Destination prefix -> connection, tried in ``priority`` order (failover)."""

    __tablename__ = "smpp_routes"
    __table_args__ = (UniqueConstraint("prefix", "connection_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # "+1", "+4420", "+" for all
    connection_id: Mapped[str] = mapped_column(ForeignKey("smpp_connections.id", ondelete="CASCADE"))
    priority: Mapped[int] = mapped_column(Integer, default=0)


class SmppBindStatus(Base):
    """One bind's status as the SMPP process holding it last published it (every second): the
    API and the CLI read it; a row not refreshed for a few seconds belongs to a process gone."""

    __tablename__ = "smpp_bind_status"

    connection_id: Mapped[str] = mapped_column(
        ForeignKey("smpp_connections.id", ondelete="CASCADE"), primary_key=True
    )
    process: Mapped[str] = mapped_column(String(128), primary_key=True)  # host:pid
    health: Mapped[str] = mapped_column(String(16))  # bound | connecting | failing | stopped
    state: Mapped[str] = mapped_column(String(16))  # the bind's own state (sms.bind_types.BindState)
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    last_error: Mapped[str] = mapped_column(String(256), default="")
    window_in_use: Mapped[int] = mapped_column(Integer, default=0)
    sent_last_minute: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SmsMessage(Base):
    """One outgoing message to one recipient. Its ``state`` is the message lifecycle's
    (gateway/sms/lifecycle.py): queued -> submitted -> delivered | failed | expired."""

    __tablename__ = "sms_messages"
    __table_args__ = (
        Index("ix_sms_messages_due", "state", "next_attempt_at"),
        # Led by the id looked up, not the resource every row of a tenant shares: without
        # statistics the planner would use the index on the resource alone (migration 0019).
        UniqueConstraint("repeatability_request_id", "resource_id"),
    )

    id: Mapped[str] = mapped_column(String(80), primary_key=True)  # Outgoing_<time><uuid>
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"))
    from_number: Mapped[str] = mapped_column(String(20))
    to_number: Mapped[str] = mapped_column(String(20))
    # ISO 3166 region, or "001" for non-geographic numbers (+800, +882, ...), as phonenumbers says
    country_code: Mapped[str] = mapped_column(String(3), default="")
    text: Mapped[str] = mapped_column(Text)
    segment_count: Mapped[int] = mapped_column(Integer)
    data_coding: Mapped[int] = mapped_column(Integer)
    tag: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    enable_delivery_report: Mapped[bool] = mapped_column(Boolean, default=False)
    delivery_report_timeout_seconds: Mapped[int] = mapped_column(Integer)
    # validityPeriodSeconds (Sms 2021-03-07), sent as the submit_sm's relative validity_period.
    validity_period_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    repeatability_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    repeatability_first_sent: Mapped[str | None] = mapped_column(String(64), nullable=True)
    state: Mapped[str] = mapped_column(String(12), default=SmsState.QUEUED)  # gateway/sms/lifecycle.py
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # claims by the SMPP process
    # True from a claim until its outcome is recorded: a claim found still in doubt was cut short
    # (a crash, or an UNKNOWN outcome), so its unacknowledged segments may have reached the SMSC.
    in_doubt: Mapped[bool] = mapped_column(Boolean, default=False)
    possible_duplicates: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # No connection of its route was bound when it was claimed: not an attempt; it goes as soon
    # as one binds (the SMPP process releases such messages then), next_attempt_at is a backstop.
    waiting_for_bind: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    connection_id: Mapped[str | None] = mapped_column(String(36), nullable=True)  # where submitted
    tried_connections: Mapped[str] = mapped_column(Text, default="")  # comma list: rejected there
    concat_reference: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dlr_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The delivery report (also for GET /deliveryReports/{id}).
    delivery_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    delivery_status_details: Mapped[str | None] = mapped_column(Text, nullable=True)
    report_received_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    segments_succeeded: Mapped[int] = mapped_column(Integer, default=0)
    segments_failed: Mapped[int] = mapped_column(Integer, default=0)


class SmsSendCounter(Base):
    """How many messages a resource stored in one second: in all (``scope`` ``*``) and to one
    destination country (``scope`` its region code). The quotas add up the last minute's rows,
    at most 60 per scope, instead of counting a minute of messages on every request; the row of
    the current second is bumped with an upsert in the sending transaction, whose row lock
    makes concurrent requests of every API process count each other exactly."""

    __tablename__ = "sms_send_counters"

    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True)
    scope: Mapped[str] = mapped_column(String(8), primary_key=True)
    second: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # Unix time, whole seconds
    sent: Mapped[int] = mapped_column(Integer)


class SmsSegment(Base):
    __tablename__ = "sms_segments"
    # Led by the SMSC's id, not the connection most rows share (see sms_messages' unique)
    __table_args__ = (Index("ix_sms_segments_smsc_id", "smsc_message_id", "connection_id"),)

    message_id: Mapped[str] = mapped_column(
        ForeignKey("sms_messages.id", ondelete="CASCADE"), primary_key=True
    )
    sequence: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    smsc_message_id: Mapped[str | None] = mapped_column(String(65), nullable=True)
    submit_state: Mapped[str] = mapped_column(String(12), default=SegmentSubmitState.PENDING)
    submit_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    receipt_state: Mapped[int | None] = mapped_column(Integer, nullable=True)  # SMPP message_state
    receipt_error: Mapped[str | None] = mapped_column(String(16), nullable=True)
    receipt_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SmsOptOut(Base):
    """Recipient ``to`` asked not to get messages from sender ``from``."""

    __tablename__ = "sms_optouts"

    from_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    to_number: Mapped[str] = mapped_column(String(20), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SmsPendingReceipt(Base):
    """A receipt whose message id matched no stored segment (yet): its resp may still be coming."""

    __tablename__ = "sms_pending_receipts"
    __table_args__ = (Index("ix_sms_pending_receipts_id", "connection_id", "smsc_message_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    connection_id: Mapped[str] = mapped_column(String(36))
    smsc_message_id: Mapped[str] = mapped_column(String(65))
    state: Mapped[int] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(16), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SmsInbound(Base):
    __tablename__ = "sms_inbound"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    resource_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    from_number: Mapped[str] = mapped_column(String(20))
    to_number: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    segment_count: Mapped[int] = mapped_column(Integer)
    keyword: Mapped[str | None] = mapped_column(String(16), nullable=True)
    connection_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SmsInboundPart(Base):
    """A part of an inbound concatenated message, kept until its set completes (or expires), so a
    restart of the SMPP process does not lose parts it already acknowledged to the SMSC."""

    __tablename__ = "sms_inbound_parts"
    __table_args__ = (Index("ix_sms_inbound_parts_set", "source", "destination", "reference", "total"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    connection_id: Mapped[str] = mapped_column(String(36))
    source: Mapped[str] = mapped_column(String(21))
    destination: Mapped[str] = mapped_column(String(21))
    reference: Mapped[int] = mapped_column(Integer)
    total: Mapped[int] = mapped_column(Integer)
    sequence: Mapped[int] = mapped_column(Integer)
    reference_bits: Mapped[int] = mapped_column(Integer)
    data_coding: Mapped[int] = mapped_column(Integer)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    udh: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
