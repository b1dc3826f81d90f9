"""Forming Event Grid batches (pure): consecutive events, at most ``max_events`` of them, in a
JSON array of at most ``max_bytes`` unless one event alone is larger (it then goes alone).

Sans-IO: it sees only the rendered size of each event, in delivery order, and returns where
each batch starts and ends; :mod:`gateway.events.deliveries` renders, assigns and stores them.
"""

from __future__ import annotations

from collections.abc import Sequence

# "[" and "]" around a batch, "," between its elements.
ARRAY_OVERHEAD = 2
SEPARATOR = 1


def array_size(sizes: Sequence[int]) -> int:
    """Bytes of a JSON array of elements of these sizes, as :func:`builder.batch_body` writes it."""
    return ARRAY_OVERHEAD + sum(sizes) + SEPARATOR * max(len(sizes) - 1, 0)


def pack(sizes: Sequence[int], max_events: int, max_bytes: int) -> list[range]:
    """Split events of these rendered sizes, in order, into batches (index ranges).

    Greedy: an event joins the open batch while the batch stays within ``max_events`` and
    ``max_bytes``; otherwise it opens the next one. Order is kept, every event is in exactly one
    batch, and no batch is empty.
    """
    if max_events < 1 or max_bytes < 1:
        raise ValueError("a batch holds at least one event and one byte")
    batches: list[range] = []
    start = 0
    used = ARRAY_OVERHEAD
    for index, size in enumerate(sizes):
        count = index - start
        if count and (count >= max_events or used + SEPARATOR + size > max_bytes):
            batches.append(range(start, index))
            start, used, count = index, ARRAY_OVERHEAD, 0
        used += size + (SEPARATOR if count else 0)
    if start < len(sizes):
        batches.append(range(start, len(sizes)))
    return batches
