"""Submitting a claimed message: choose a connection of its route, segment it, hand each part to
the bind, and pass the outcomes to the writer once the last part's resp (or failure) is in."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Future

from sms.bind import SmppBind
from sms.bind_types import BindState, SubmitOutcome, SubmitRequest, SubmitResult
from sms.encoding import DataCoding
from sms.segmentation import segment_message
from sms.validity import relative_validity_period
from sms.worker.claims import Claimed
from sms.worker.routing import RouteOutcome, RoutingTable
from sms.worker.work import NoRoute, PartResult, SubmitBatch, Work


def unroutable_reason(outcome: RouteOutcome, message: Claimed) -> str:
    """What a message's report says when no connection could be chosen for it."""
    if outcome is RouteOutcome.NO_ROUTE:
        return f"No SMPP route for destination {message.to_number}."
    if outcome is RouteOutcome.ALL_REFUSED:
        return message.error or "Every SMPP connection of the route rejected the message."
    return "No SMPP connection of the route is bound."


class Submitter:
    def __init__(self, hand_over: Callable[[Work], None]) -> None:
        self.hand_over = hand_over  # to the writer

    def submit(self, message: Claimed, routing: RoutingTable, binds: Mapping[str, SmppBind]) -> None:
        def is_bound(connection_id: str) -> bool:
            bind = binds.get(connection_id)
            return bind is not None and bind.state is BindState.BOUND

        choice = routing.choose(message.to_number, message.tried_connections, is_bound)
        if choice.connection_id is None:
            permanent = choice.outcome is not RouteOutcome.NONE_BOUND
            reason = unroutable_reason(choice.outcome, message)
            self.hand_over(Work(NoRoute(message.id, reason, permanent=permanent)))
            return
        connection_id = choice.connection_id
        view = routing.connections[connection_id]
        done = message.accepted
        coding = DataCoding(message.data_coding)
        if view.default_data_coding == "ucs2" and not done:
            coding = DataCoding.UCS2  # this connection's SMSC wants UCS-2 whatever the text
        segmented = segment_message(message.text, reference=message.concat_reference, data_coding=coding)
        bind = binds[connection_id]
        period = message.validity_period_seconds
        validity = relative_validity_period(period) if period else ""
        futures: list[tuple[int, Future[SubmitResult]]] = []
        for segment in segmented.segments:
            if segment.sequence in done:
                continue
            tlvs: dict[str, int | bytes | str] = {}
            if segment.sar is not None:
                tlvs = {
                    "sar_msg_ref_num": segment.sar.msg_ref_num,
                    "sar_total_segments": segment.sar.total_segments,
                    "sar_segment_seqnum": segment.sar.segment_seqnum,
                }
            request = SubmitRequest(
                source=message.from_number.lstrip("+"),
                destination=message.to_number.lstrip("+"),
                short_message=segment.short_message,
                data_coding=int(segment.data_coding),
                esm_class=segment.esm_class_flags,
                registered_delivery=1,
                tlvs=tlvs,
                source_ton=view.source_ton,
                source_npi=view.source_npi,
                dest_ton=view.dest_ton,
                dest_npi=view.dest_npi,
                validity_period=validity,
            )
            futures.append((segment.sequence, bind.submit(request)))
        batch = SubmitBatch(
            message.id,
            connection_id,
            [],
            len(segmented.segments),
            int(segmented.data_coding),
            first_attempt=message.first_attempt and not done,
            report_timeout_seconds=message.report_timeout_seconds,
        )
        if not futures:
            self.hand_over(Work(batch))
            return
        remaining = [len(futures)]
        lock = threading.Lock()

        def finished(sequence: int, future: Future[SubmitResult]) -> None:
            try:
                result = future.result()
            except Exception as exc:
                result = SubmitResult(SubmitOutcome.UNKNOWN, detail=str(exc))
            with lock:
                batch.results.append(PartResult(sequence, result))
                remaining[0] -= 1
                last = remaining[0] == 0
            if last:
                self.hand_over(Work(batch))

        for sequence, future in futures:
            future.add_done_callback(functools.partial(finished, sequence))
