"""The media of a worker's calls: plays, bridges, mutes and holds on pjsua2's conference bridge.

``CallMedia`` belongs to the ``UserAgent`` and to its owner thread: it keeps the facts (active
streams, bridges, mutes, holds, plays), derives the connections they need with the pure
``sip.worker.wiring.connections`` and applies the difference with what is connected. Traps
(docs/sip-worker.md):
- a player is never destroyed inside a pjsua2 callback: stopped players go to a list that
  ``after_poll`` empties, and ``close`` empties it before ``libDestroy``;
- an ended call's conference port is already gone: its edges are forgotten, not disconnected;
- every active stream stays connected to the clock (slot 0) so its audio is always consumed.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable

import pjsua2 as pj

from sip.worker import wiring
from sip.worker.messages import (
    Bridge,
    CommandFailed,
    Event,
    Hold,
    Mute,
    Play,
    PlayFinished,
    PlayOutcome,
    PlayStarted,
    StopPlay,
    Unbridge,
)
from sip.worker.player import EofQueue, Playback, PlayError
from sip.worker.wiring import Edge, Node

log = logging.getLogger(__name__)

MediaCommand = Play | StopPlay | Bridge | Unbridge | Mute | Hold
MEDIA_COMMANDS = (Play, StopPlay, Bridge, Unbridge, Mute, Hold)


class CallMedia:
    """Media state of the calls of one endpoint; ``emit`` receives the events it produces."""

    def __init__(self, clock: pj.AudioMedia, emit: Callable[[Event], None], has_call: Callable[[str], bool]):
        self._clock = clock
        self._emit = emit
        self._has_call = has_call
        self.streams: dict[str, pj.AudioMedia] = {}  # call id -> its active audio stream
        self.bridges: set[frozenset[str]] = set()
        self.muted: set[str] = set()
        self.held: set[str] = set()
        self.plays: dict[str, Playback] = {}
        self.edges: frozenset[Edge] = frozenset()
        self._eofs: EofQueue = deque()
        self._stopped: list[object] = []  # players to destroy after the poll

    # commands (owner thread) ------------------------------------------------------------------

    def execute(self, command: MediaCommand) -> None:
        if isinstance(command, Play):
            self._play(command)
        elif isinstance(command, StopPlay):
            playback = self.plays.get(command.call_id)
            if playback is not None and command.operation_id in ("", playback.operation_id):
                self._finish(command.call_id, PlayOutcome.STOPPED)
        elif isinstance(command, Bridge | Unbridge):
            if command.other_call_id == command.call_id or not self._has_call(command.other_call_id):
                name = type(command).__name__
                self._emit(CommandFailed(command.call_id, name, f"no such call {command.other_call_id}"))
                return
            bridge = wiring.pair(command.call_id, command.other_call_id)
            if isinstance(command, Bridge):
                self.bridges.add(bridge)
            else:
                self.bridges.discard(bridge)
        elif isinstance(command, Mute):
            (self.muted.add if command.muted else self.muted.discard)(command.call_id)
        else:
            (self.held.add if command.held else self.held.discard)(command.call_id)
        self.rewire()

    def bridge_when_active(self, call_id: str, other_call_id: str) -> None:
        """``MakeCall.bridge_with``: the bridge exists at once, its edges once both streams are up."""
        self.bridges.add(wiring.pair(call_id, other_call_id))

    def _play(self, play: Play) -> None:
        if play.call_id in self.plays:
            self._finish(play.call_id, PlayOutcome.STOPPED)
        try:
            playback = Playback(play, self._eofs)
        except PlayError as exc:
            self._emit(PlayFinished(play.call_id, play.operation_id, PlayOutcome.FAILED, str(exc)))
            return
        self.plays[play.call_id] = playback
        log.info("play %s on call %s: %d file(s)", play.operation_id, play.call_id, len(play.files))

    def _finish(self, call_id: str, outcome: PlayOutcome, reason: str = "") -> None:
        """End the call's play: disconnect its player (if the call still has a port), destroy later."""
        playback = self.plays.pop(call_id)
        stream = self.streams.get(call_id)
        edge = (wiring.player_node(call_id), wiring.call_node(call_id))
        if edge in self.edges:
            if stream is not None:
                self._disconnect(playback.player, stream)
            self.edges = self.edges - {edge}
        self._stopped.append(playback.player)
        self._emit(PlayFinished(call_id, playback.operation_id, outcome, reason))

    # pjsua2 callbacks (owner thread, inside the poll) ----------------------------------------

    def media_active(self, call_id: str, stream: pj.AudioMedia) -> None:
        previous = self.streams.get(call_id)
        if previous is not None and previous.getPortId() != stream.getPortId():
            self.edges = self.edges - wiring.touching(self.edges, call_id)  # a new port: rewire it
        self.streams[call_id] = stream
        self.rewire()

    def call_ended(self, call_id: str) -> None:
        """The call's conference port is gone with it: forget its edges, stop its play."""
        self.edges = self.edges - wiring.touching(self.edges, call_id)
        self.streams.pop(call_id, None)
        if call_id in self.plays:
            self._finish(call_id, PlayOutcome.STOPPED, "the call ended")
        self.bridges = {bridge for bridge in self.bridges if call_id not in bridge}
        self.muted.discard(call_id)
        self.held.discard(call_id)
        self.rewire()

    # the owner's loop ---------------------------------------------------------------------------

    def after_poll(self) -> None:
        """Move plays whose file ended to their next file; destroy the players stopped meanwhile."""
        while self._eofs:
            token = self._eofs.popleft()
            playback = next((p for p in self.plays.values() if p.token == token), None)
            if playback is None:  # a player stopped before its end was handled
                continue
            try:
                self._next_file(playback)
            except pj.Error as exc:  # after the poll nothing may raise into the owner loop
                if playback.call_id in self.plays:
                    self._finish(playback.call_id, PlayOutcome.FAILED, exc.info())
        self._stopped.clear()

    def _next_file(self, playback: Playback) -> None:
        call_id = playback.call_id
        try:
            step = playback.advance()
        except PlayError as exc:
            self._finish(call_id, PlayOutcome.FAILED, str(exc))
            return
        if step is None:
            self._finish(call_id, PlayOutcome.COMPLETED)
            return
        old, new = step
        stream = self.streams.get(call_id)
        if stream is not None and (wiring.player_node(call_id), wiring.call_node(call_id)) in self.edges:
            new.startTransmit(stream)
            self._disconnect(old, stream)
        self._stopped.append(old)

    def rewire(self) -> None:
        """Connect and disconnect conference ports until the edges are what the facts need."""
        wanted = wiring.connections(
            self.streams.keys(), self.bridges, self.muted, self.held, self.plays.keys()
        )
        remove, add = wiring.diff(self.edges, wanted)
        edges = set(self.edges)
        for source, sink in remove:
            self._disconnect(self._port(source), self._port(sink))
            edges.discard((source, sink))
        for source, sink in add:
            try:
                self._port(source).startTransmit(self._port(sink))
            except pj.Error as exc:  # left out of the edges: the next change tries it again
                log.warning("cannot connect %s to %s: %s", source, sink, exc.info())
                continue
            edges.add((source, sink))
        self.edges = frozenset(edges)
        for call_id, playback in self.plays.items():
            if not playback.started and (wiring.player_node(call_id), wiring.call_node(call_id)) in edges:
                playback.started = True
                self._emit(PlayStarted(call_id, playback.operation_id))

    def close(self) -> None:
        """Drop every player and stream reference (before ``libDestroy``)."""
        for call_id in list(self.plays):
            self._finish(call_id, PlayOutcome.STOPPED, "the worker stopped")
        self.streams.clear()
        self.edges = frozenset()
        self._stopped.clear()
        self._eofs.clear()

    def _port(self, node: Node) -> pj.AudioMedia:
        if node.kind == "call":
            return self.streams[node.call_id]
        if node.kind == "player":
            return self.plays[node.call_id].player
        return self._clock

    @staticmethod
    def _disconnect(source: pj.AudioMedia, sink: pj.AudioMedia) -> None:
        try:
            source.stopTransmit(sink)
        except pj.Error as exc:  # a port pjsua already removed: nothing left to undo
            log.debug("stopTransmit failed: %s", exc.info())
