"""The SIP process's end of the call-command queue: takes the commands any API process sent to
this ``trunkline sip`` process (gateway.calls.commands publishes them on
``trunkline.sip.<process id>``) and hands each to the pool."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import messaging
from prometheus_client import Counter

from gateway.calls.commands import command_queue, place_queue
from gateway.calls.media_requests import MediaRequest, MediaRequestError, is_media_request
from gateway.calls.media_requests import decode as decode_media_request
from gateway.core.broker import LOCAL_BROKER_SCHEME
from gateway.core.metrics import owned_by
from sip.worker.messages import (
    Command,
)
from sip.worker.wire import MessageError, decode, is_command

log = logging.getLogger("trunkline.calls.commands")

Consumer: Any = messaging.Consumer
MEDIA_REQUEST_PREFIX = '{"type":"MediaRequest"'  # how media_requests.encode starts

COMMANDS_RECEIVED = Counter(
    "trunkline_call_commands_received_total", "Call commands a SIP process took from its queue."
)
COMMANDS_REJECTED = Counter(
    "trunkline_call_commands_rejected_total", "Messages on a SIP process's queue that were not commands."
)
owned_by("sip", COMMANDS_RECEIVED, COMMANDS_REJECTED)


class CommandConsumer:
    """Takes the commands of one SIP process off its queue (and new calls off the shared one)
    in a thread and hands each to ``on_command`` (the pool's ``send``); reconnects with backoff
    when the broker goes."""

    def __init__(
        self,
        app: Celery,
        process: str,
        on_command: Callable[[Command], object],
        on_media: Callable[[MediaRequest], object] | None = None,
    ) -> None:
        self.app = app
        self.on_media = on_media
        self.queue = command_queue(process)
        self.queues = [self.queue, place_queue()]  # its own, and new outbound calls
        self.on_command = on_command
        self.stop_event = threading.Event()
        self.connected = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sip-commands", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        delay = 0.2
        options: dict[str, Any] = {}
        if self.app.conf.broker_url == LOCAL_BROKER_SCHEME:
            options["polling_interval"] = 0.02
        while not self.stop_event.is_set():
            try:
                with self.app.connection_for_read(transport_options=options) as connection:
                    connection.ensure_connection(max_retries=1)
                    with (
                        connection.channel() as channel,
                        Consumer(channel, queues=self.queues, callbacks=[self._on_message], accept=["json"]),
                    ):
                        self.connected.set()
                        delay = 0.2
                        while not self.stop_event.is_set():
                            try:
                                connection.drain_events(timeout=0.25)
                            except TimeoutError:
                                continue
            except Exception as exc:  # the broker went away: reconnect after a pause
                self.connected.clear()
                log.warning(
                    "call-command consumer: %s: %s; reconnecting in %.1fs", type(exc).__name__, exc, delay
                )
                self.stop_event.wait(delay)
                delay = min(delay * 2, 5.0)
        self.connected.clear()

    def _on_message(self, body: Any, message: Any) -> None:
        if self._media_request(body, message):
            return
        try:
            command = decode(body.encode() if isinstance(body, str) else b"")
            if not is_command(command):
                raise MessageError("an event, not a command")
        except MessageError as exc:
            COMMANDS_REJECTED.inc()
            log.warning("dropping a message on %s: %s", self.queue.name, exc)
            message.ack()
            return
        COMMANDS_RECEIVED.inc()
        try:
            self.on_command(command)  # type: ignore[arg-type]
        finally:
            message.ack()

    def _media_request(self, body: Any, message: Any) -> bool:
        """A media request for the media controller (sip.control.media): handled here."""
        try:
            tagged = isinstance(body, str) and body.startswith(MEDIA_REQUEST_PREFIX)
            data = json.loads(body) if tagged else None
        except ValueError:
            return False
        if not isinstance(data, dict) or not is_media_request(data) or self.on_media is None:
            return False
        try:
            request = decode_media_request(data)
        except MediaRequestError as exc:
            COMMANDS_REJECTED.inc()
            log.warning("dropping a media request on %s: %s", self.queue.name, exc)
            message.ack()
            return True
        COMMANDS_RECEIVED.inc()
        try:
            self.on_media(request)
        finally:
            message.ack()
        return True
