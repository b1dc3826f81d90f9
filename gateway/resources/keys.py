"""Finding the resource whose access key signed a request, without a table scan per request.

ACS requests carry no key id, so the resource is the one whose key verifies the signature. The
index keeps every resource's decoded keys in memory, tries resources on the request's host
first and then the most recently matched ones, and never trusts itself: the resource it finds
is re-read by primary key and the signature checked against the stored keys before the request
is accepted, so a regenerated key or a deleted resource stops working at once in every process.
When nothing matches, a cheap fingerprint of the table (row count, newest key change) says
whether the index is stale; only then is it reloaded, so bad signatures cannot force scans.

Keys are stored sealed (gateway/core/secrets.py). They are opened when the index loads, not per
request: the confirming read fetches the stored form, and a stored form the index already holds
is the key it already decoded (it is opened only when it differs: a new key, or a rotation).
"""

from __future__ import annotations

import base64
from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy.orm import Session

from gateway.core.auth import TenantKeyIndex
from gateway.core.hmac_auth import SignedRequest
from gateway.core.sealed_columns import reveal
from gateway.resources import repository
from gateway.resources.repository import ResourceKeys, StoredKeys


@dataclass(frozen=True)
class _Entry:
    resource_id: str
    host: str
    keys: tuple[bytes, bytes]
    stored: StoredKeys  # the form they were opened from


def _stored(keys: StoredKeys | ResourceKeys) -> StoredKeys:
    return StoredKeys(keys.primary_key, keys.secondary_key)


def _opened(stored: StoredKeys) -> tuple[bytes, bytes]:
    return (
        base64.b64decode(reveal(stored.primary_key, "resources.primary_key")),
        base64.b64decode(reveal(stored.secondary_key, "resources.secondary_key")),
    )


class ResourceKeyIndex(TenantKeyIndex):
    """The tenant key index of ``gateway.core.auth``: every resource's keys, in memory."""

    def __init__(self) -> None:
        self._lock = Lock()
        # Most recently matched last; move_to_end keeps the hot tenants at the cheap end.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._fingerprint: tuple[Any, ...] | None = None

    def _reload(self, session: Session) -> None:
        rows = repository.all_keys(session)
        fingerprint = repository.keys_fingerprint(session)
        with self._lock:
            known = dict(self._entries)
        entries: OrderedDict[str, _Entry] = OrderedDict()
        for row in rows:
            stored = _stored(row)
            before = known.get(row.id)
            # A key already opened is not opened again.
            keys = before.keys if before is not None and before.stored == stored else _opened(stored)
            entries[row.id] = _Entry(row.id, row.endpoint_host, keys, stored)
        with self._lock:
            # Keep the recency order of the entries that survive.
            ordered = [rid for rid in self._entries if rid in entries]
            merged: OrderedDict[str, _Entry] = OrderedDict(
                (rid, entries[rid]) for rid in entries if rid not in ordered
            )
            for rid in ordered:
                merged[rid] = entries[rid]
            self._entries = merged
            self._fingerprint = fingerprint

    def _scan(self, signed: SignedRequest, host: str) -> str | None:
        with self._lock:
            entries = list(self._entries.values())
        host = host.lower()
        same_host = [e for e in reversed(entries) if e.host == host]
        others = [e for e in reversed(entries) if e.host != host]
        for entry in (*same_host, *others):
            if any(signed.matches(key) for key in entry.keys):
                return entry.resource_id
        return None

    def _confirm(self, session: Session, signed: SignedRequest, resource_id: str) -> bool:
        return self._accept(signed, resource_id, repository.stored_keys(session, resource_id))

    def _accept(self, signed: SignedRequest, resource_id: str, stored: StoredKeys | None) -> bool:
        """Whether a stored key of ``resource_id`` verifies the request (then it is most recent)."""
        if stored is None:
            return False
        with self._lock:
            entry = self._entries.get(resource_id)
        if entry is not None and entry.stored == stored:
            keys = entry.keys
        else:
            # Changed since the index loaded it (regenerated, or sealed again with a new key).
            keys = _opened(stored)
            if entry is not None and keys == entry.keys:  # sealed again: open the new form once
                with self._lock:
                    if resource_id in self._entries:
                        self._entries[resource_id] = _Entry(entry.resource_id, entry.host, keys, stored)
        if not any(signed.matches(key) for key in keys):
            return False
        with self._lock:
            if resource_id in self._entries:
                self._entries.move_to_end(resource_id)
        return True

    def resolve_many(self, session: Session, calls: list[tuple[SignedRequest, str]]) -> list[str | None]:
        """:meth:`resolve` for several requests (signature, host), with one read of the stored
        keys of every resource the index names; a request the index cannot settle that way
        (no match, or a key changed since the index was loaded) goes through :meth:`resolve`."""
        if self._fingerprint is None:
            self._reload(session)
        owners = [self._scan(signed, host) for signed, host in calls]
        stored = repository.stored_keys_of(session, {owner for owner in owners if owner is not None})
        resolved: list[str | None] = []
        for (signed, host), owner in zip(calls, owners, strict=True):
            if owner is not None and self._accept(signed, owner, stored.get(owner)):
                resolved.append(owner)
            else:
                resolved.append(self.resolve(session, signed, host))
        return resolved

    def resolve(self, session: Session, signed: SignedRequest, host: str) -> str | None:
        """The id of the resource whose current key signed the request, else None."""
        if self._fingerprint is None:
            self._reload(session)
        owner = self._scan(signed, host)
        if owner is not None and self._confirm(session, signed, owner):
            return owner
        if owner is None and repository.keys_fingerprint(session) == self._fingerprint:
            return None
        self._reload(session)
        owner = self._scan(signed, host)
        if owner is not None and self._confirm(session, signed, owner):
            return owner
        return None
