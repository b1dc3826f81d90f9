"""The SIP process's side of calls with several parties: a REFER's progress, a command the worker
could not carry out for a transfer, and the invitation timer of participant legs. The rules are
in gateway.calls.party_events (and, pure, gateway.calls.legs); each change commits before its
commands go to the worker. A leg's answer or end goes through the controller's ``_leg``, which
asks gateway.calls.party_events.on_leg first."""

from __future__ import annotations

import logging

from gateway.calls import party_events, repository
from gateway.core.db import Database, utcnow
from sip.worker.messages import Command, CommandFailed, Mute, Transfer, TransferProgress

log = logging.getLogger("trunkline.calls.parties")

PARTY_COMMANDS = frozenset({Transfer.__name__, Mute.__name__})  # whose failures are handled here


class PartiesControl:
    def __init__(self, database: Database, process: str) -> None:
        self.database = database
        self.process = process

    def on_transfer_progress(self, event: TransferProgress) -> tuple[Command, ...]:
        with self.database.session() as session:
            return party_events.refer_news(
                session, event.call_id, event.status, event.final, event.reason, utcnow()
            )

    def on_command_failed(self, event: CommandFailed) -> tuple[Command, ...] | None:
        """A party command the worker refused (None: not one of these): a REFER that never went
        out is a failed transfer (500 with the worker's reason); a refused Mute is only logged."""
        if event.command == Transfer.__name__:
            log.warning("REFER on leg %s was not sent: %s", event.call_id, event.reason)
            with self.database.session() as session:
                return party_events.refer_news(session, event.call_id, 500, True, event.reason, utcnow())
        if event.command == Mute.__name__:
            log.warning("mute of leg %s failed: %s", event.call_id, event.reason)
            return ()
        return None

    def due_invitations(self) -> list[Command]:
        """Hang up the participant legs whose invitation timed out (AddParticipantFailed 408)."""
        now = utcnow()
        with self.database.read_session() as session:
            due = repository.invitations_due(session, self.process, now)
        commands: list[Command] = []
        for leg_id in due:
            with self.database.session() as session:
                commands.extend(party_events.invitation_timed_out(session, leg_id, now))
        return commands
