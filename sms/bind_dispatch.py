"""The bind's dispatcher thread (sms.bind): hands each delivery (receipt or MO message) to the
``on_deliver`` callbacks, then the deferred one, in arrival order, so that slow callbacks never
hold up the socket's reader; and answers the SMSC when the callbacks say so."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from sms.bind_session import Session
from sms.esme import DELIVERY_RETRY_LATER, Delivery
from sms.pdu import ESME_ROK, DeliverSm

log = logging.getLogger("trunkline.smpp")

DeliverCallback = Callable[[DeliverSm], None]
# Answers one delivery: the deliver_sm_resp (data_sm_resp) goes out with this command_status.
DeliverAnswer = Callable[[int], None]
DeferredDeliverCallback = Callable[[DeliverSm, DeliverAnswer], None]


class DeliveryDispatcher:
    """The deliveries of one bind, queued by its readers and handed out by :meth:`run`."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._deliveries: queue.SimpleQueue[Delivery[Session] | None] = queue.SimpleQueue()  # None: stop
        self.callbacks: list[DeliverCallback] = []
        self.deferred: DeferredDeliverCallback | None = None

    def put(self, delivery: Delivery[Session]) -> None:
        self._deliveries.put(delivery)

    def close(self) -> None:
        """:meth:`run` returns after the deliveries queued before this."""
        self._deliveries.put(None)

    def run(self) -> None:
        while True:
            delivery = self._deliveries.get()
            if delivery is None:
                return
            status = ESME_ROK
            for callback in list(self.callbacks):
                try:
                    callback(delivery.deliver)
                except Exception:
                    log.exception("smpp %s: deliver callback failed", self._label)
                    status = DELIVERY_RETRY_LATER
            answer = self._answer(delivery)
            deferred = self.deferred
            if deferred is None or status != ESME_ROK:
                answer(status)
                continue
            try:
                deferred(delivery.deliver, answer)
            except Exception:
                log.exception("smpp %s: deliver callback failed", self._label)
                answer(DELIVERY_RETRY_LATER)

    def _answer(self, delivery: Delivery[Session]) -> DeliverAnswer:
        """The answer to one delivery: with ack_after_callbacks the resp goes out only now."""
        session = delivery.link
        answered = threading.Lock()

        def answer(status: int) -> None:
            if session is None or not answered.acquire(blocking=False):
                return
            try:
                session.write(delivery.answer(status))
            except OSError as exc:
                log.warning(
                    "smpp %s: could not answer a delivery (the SMSC will resend): %s", self._label, exc
                )

        return answer
