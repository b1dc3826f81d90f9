"""Tables of the calls domain's routing: the operator's SIP trunks and prefix routes (carriers of
kind ``sip``, in the style of the SMPP connections and routes), and each tenant's own SIP
configuration as the SipRouting API (2023-03-01) holds it: trunks keyed by FQDN and ordered
routes with a ``numberPattern``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from gateway.core.db import Base, UTCDateTime, new_uuid, utcnow
from gateway.core.sealed_columns import SealedText

# The conditions of the partial indexes, as SQL: a statement meant to use one must contain it
# literally (a prepared statement's generic plan cannot prove it from a bound parameter).
LIVE_CALL = "state <> 'ended'"
PLACING_LEG = "state = 'placing'"


class SipTrunk(Base):
    """One SIP trunk to a carrier: where calls go out, which addresses may send INVITEs in, and
    how to authenticate (digest credentials, optional REGISTER)."""

    __tablename__ = "sip_trunks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    name: Mapped[str] = mapped_column(String(63), unique=True)
    # A deleted carrier takes its trunks (and their routes) with it.
    carrier_id: Mapped[str] = mapped_column(ForeignKey("carriers.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer, default=5060)
    transport: Mapped[str] = mapped_column(String(3), default="udp")  # udp | tcp | tls
    # CIDRs whose INVITEs this trunk accepts; empty: the host itself when it is an IP address.
    allowed_networks: Mapped[list[Any]] = mapped_column(JSON, default=list)
    username: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Encrypted at rest (gateway/core/sealed_columns.py).
    password: Mapped[str | None] = mapped_column(SealedText("sip_trunks.password"), nullable=True)
    register: Mapped[bool] = mapped_column(Boolean, default=False)
    codecs: Mapped[list[Any]] = mapped_column(JSON, default=list)  # in preference order
    srtp: Mapped[str] = mapped_column(String(9), default="off")  # off | optional | mandatory
    # The carrier takes REFER: a transfer of a call through this trunk is a REFER to the caller's
    # leg rather than a new leg bridged in this gateway (docs/calls.md, "Several parties").
    refer: Mapped[bool] = mapped_column(Boolean, default=False)
    # How the carrier sends DTMF (sip.dtmf_mode): auto | rfc2833 | info | inband. It decides
    # whether a call listening for digits has its audio tapped for in-band tones.
    dtmf: Mapped[str] = mapped_column(String(7), default="auto")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The last outcome of its REGISTER (``register``), as the SIP process keeping it reports:
    # registered | failed, the registrar's status and phrase, until when the binding holds.
    registration_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    registration_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    registration_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    registration_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    registration_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class SipRoute(Base):
    """Destination prefix -> trunk, tried in ``priority`` order (failover); the longest prefix
    that matches a number wins."""

    __tablename__ = "sip_routes"
    __table_args__ = (UniqueConstraint("prefix", "trunk_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    prefix: Mapped[str] = mapped_column(String(16), index=True)  # "+1", "+4420", "+" for all
    trunk_id: Mapped[str] = mapped_column(ForeignKey("sip_trunks.id", ondelete="CASCADE"), index=True)
    priority: Mapped[int] = mapped_column(Integer, default=0)


class TenantSipTrunk(Base):
    """A trunk of a tenant's own SIP configuration (SipRouting's ``Trunk``), keyed by its FQDN."""

    __tablename__ = "tenant_sip_trunks"

    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True)
    fqdn: Mapped[str] = mapped_column(String(249), primary_key=True)
    sip_signaling_port: Mapped[int] = mapped_column(Integer)
    # Not in SipRouting 2023-03-01 (every trunk is enabled there); later versions have it.
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)


class TenantSipRoute(Base):
    """A route of a tenant's SIP configuration (SipRouting's ``TrunkRoute``); ``position`` keeps
    the list's order, which is the order routes are tried in."""

    __tablename__ = "tenant_sip_routes"

    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    number_pattern: Mapped[str] = mapped_column(String(1024))
    trunks: Mapped[list[Any]] = mapped_column(JSON, default=list)  # FQDNs, in failover order


class Call(Base):
    """A call connection (ACS's ``callConnectionId`` is its id): who, where it stands
    (gateway.calls.lifecycle owns ``state``), where the app wants its callbacks, and the SIP
    process holding it, so that any API process can serve any command on it."""

    __tablename__ = "calls"
    # Live calls only: the table keeps every call ever made, the sweeper and the timers look
    # for the few live ones (their statements spell LIVE_CALL out, see repository.py).
    __table_args__ = (
        Index(
            "ix_calls_live",
            "sip_process",
            "state",
            postgresql_where=text(LIVE_CALL),
            sqlite_where=text(LIVE_CALL),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    resource_id: Mapped[str] = mapped_column(ForeignKey("resources.id", ondelete="CASCADE"), index=True)
    direction: Mapped[str] = mapped_column(String(8))  # inbound | outbound
    state: Mapped[str] = mapped_column(String(16))
    end_reason: Mapped[str | None] = mapped_column(String(32), nullable=True)
    server_call_id: Mapped[str] = mapped_column(String(128), index=True)
    correlation_id: Mapped[str] = mapped_column(String(36))
    source_number: Mapped[str] = mapped_column(String(32))  # the caller (E.164)
    target_number: Mapped[str] = mapped_column(String(32))  # the callee (E.164)
    caller_display_name: Mapped[str] = mapped_column(String(256), default="")
    callback_uri: Mapped[str | None] = mapped_column(String(2048), nullable=True)
    callback_subscription_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    operation_context: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    sip_process: Mapped[str] = mapped_column(String(128))  # the `trunkline sip` process holding it
    ring_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # outbound: the route plan's destinations (JSON list) and the index of the one being tried
    destinations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    destination_index: Mapped[int] = mapped_column(Integer, default=0)
    answered: Mapped[bool] = mapped_column(Boolean, default=False)
    participants_sequence: Mapped[int] = mapped_column(Integer, default=0)  # ParticipantsUpdated's
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # when ``state`` last changed: the sweeper's clock for the place and command bounds
    state_since: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True, default=utcnow)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class CallLeg(Base):
    """One SIP dialog of a call, named by the worker's call id, in the worker that holds it."""

    __tablename__ = "call_legs"
    # Participants being invited: the SIP controller looks for late ones several times a second.
    __table_args__ = (
        Index(
            "ix_call_legs_placing",
            "sip_process",
            "invitation_deadline",
            postgresql_where=text(PLACING_LEG),
            sqlite_where=text(PLACING_LEG),
        ),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the SIP worker's call id
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    sip_process: Mapped[str] = mapped_column(String(128))
    worker: Mapped[int | None] = mapped_column(Integer, nullable=True)
    number: Mapped[str] = mapped_column(String(32))  # the PSTN party of this leg (E.164)
    sip_call_id: Mapped[str] = mapped_column(String(256), default="")
    remote: Mapped[str] = mapped_column(String(255), default="")  # carrier address or trunk
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # Several parties (gateway.calls.legs owns ``state`` of participant and transfer legs):
    role: Mapped[str] = mapped_column(String(12), default="call")  # call | participant | transfer
    state: Mapped[str | None] = mapped_column(String(12), nullable=True)
    invitation_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    operation_context: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    callback_subscription_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    source_number: Mapped[str | None] = mapped_column(String(32), nullable=True)
    destinations: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    destination_index: Mapped[int] = mapped_column(Integer, default=0)
    invitation_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    bridge_with: Mapped[str | None] = mapped_column(String(64), nullable=True)
    muted: Mapped[bool] = mapped_column(Boolean, default=False)
    # A remove, cancel or REFER transfer waiting for its outcome: {"kind", "context", "subscription"}
    pending: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class SipProcess(Base):
    """A ``trunkline sip`` process's heartbeat: refreshed every second while it runs, so that the
    sweeper (gateway.calls.sweeper) can end the calls of one that died without a word."""

    __tablename__ = "sip_processes"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)  # the calls' ``sip_process``
    host: Mapped[str] = mapped_column(String(255), default="")
    pid: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    # set when it stops cleanly: its calls are over at once, without waiting for the bound
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
