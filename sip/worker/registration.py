"""A worker's registrations to carriers: one pjsua2 account per registered trunk.

Owned by the worker's UserAgent (same thread, like every pjsua2 object). pjsua sends the
REGISTER, answers the registrar's digest challenge with the trunk's credentials, refreshes the
binding before it expires and retries after a failure; each outcome (``onRegState``) becomes a
``RegistrationState`` event. The Contact is forced to the address the carrier must send its
INVITEs to: the edge's (Kamailio's listen address), not the worker's loopback port.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pjsua2 as pj

from sip.worker.messages import Event, Register, RegistrationState, Unregister

log = logging.getLogger(__name__)

RETRY_SECONDS = 30  # after a failed REGISTER (pjsua's retryIntervalSec)
# pjsua has 8 accounts (PJSUA_MAX_ACC): one inbound, the rest shared with the outbound caller
# ids (ua.MAX_ACCOUNTS), so registrations take at most this many.
MAX_REGISTRATIONS = 4


class _RegisteringAccount(pj.Account):  # type: ignore[misc]
    def __init__(
        self,
        trunk: str,
        report: Callable[[Event], None],
        on_incoming: Callable[[pj.Account, pj.OnIncomingCallParam], None],
    ) -> None:
        super().__init__()
        self.trunk = trunk
        self.report = report
        self.on_incoming = on_incoming

    def onRegState(self, prm: pj.OnRegStateParam) -> None:
        try:
            info = self.getInfo()
            registered = bool(info.regIsActive) and 200 <= prm.code < 300
            expires = int(info.regExpiresSec) if registered else 0
            self.report(RegistrationState(self.trunk, registered, int(prm.code), str(prm.reason), expires))
        except Exception:  # never back into pjsua2's C++
            log.exception("onRegState of %s", self.trunk)

    def onIncomingCall(self, prm: pj.OnIncomingCallParam) -> None:
        # an INVITE to the registered contact: the same path as the inbound account's
        try:
            self.on_incoming(self, prm)
        except Exception:
            log.exception("onIncomingCall on the account of %s", self.trunk)


class Registrations:
    """The trunk registrations of one worker: ``execute`` a Register/Unregister, ``close`` all."""

    def __init__(
        self,
        account_config: Callable[[str], pj.AccountConfig],
        report: Callable[[Event], None],
        on_incoming: Callable[[pj.Account, pj.OnIncomingCallParam], None],
        outbound_proxy: str | None,
    ) -> None:
        self._account_config = account_config
        self._report = report
        self._on_incoming = on_incoming
        self._proxy = outbound_proxy
        self._accounts: dict[str, _RegisteringAccount] = {}

    def execute(self, command: Register | Unregister) -> None:
        self._drop(command.trunk)
        if isinstance(command, Unregister):
            return
        if len(self._accounts) >= MAX_REGISTRATIONS:
            reason = f"at most {MAX_REGISTRATIONS} registered trunks per SIP process"
            self._report(RegistrationState(command.trunk, False, 503, reason))
            return
        cfg = self._account_config(command.aor)
        cfg.regConfig.registrarUri = command.registrar
        cfg.regConfig.timeoutSec = command.expires
        cfg.regConfig.retryIntervalSec = RETRY_SECONDS
        cfg.regConfig.firstRetryIntervalSec = RETRY_SECONDS
        cfg.sipConfig.contactForced = command.contact
        cfg.sipConfig.authCreds.append(pj.AuthCredInfo("digest", "*", command.username, 0, command.password))
        if self._proxy:
            cfg.sipConfig.proxies.append(self._proxy)
        account = _RegisteringAccount(command.trunk, self._report, self._on_incoming)
        try:
            account.create(cfg, False)  # sends the first REGISTER
        except pj.Error as exc:
            self._report(RegistrationState(command.trunk, False, int(exc.status) or 500, exc.info()))
            return
        self._accounts[command.trunk] = account

    def __len__(self) -> int:
        return len(self._accounts)

    def _drop(self, trunk: str) -> None:
        account = self._accounts.pop(trunk, None)
        if account is not None:
            account.shutdown()  # unregisters (Expires: 0) if registered

    def close(self) -> None:
        for trunk in list(self._accounts):
            self._drop(trunk)
