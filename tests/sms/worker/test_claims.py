"""Send job tickets (sms/worker/claims.py): ids taken oldest first a window at a time, given back
when a claim fails, and a job done once every id of it went through a claim."""

from __future__ import annotations

from sms.worker.claims import JobTickets


def test_ids_are_taken_oldest_first_up_to_the_room() -> None:
    tickets = JobTickets()
    first, second = tickets.add(["1", "2", "3"]), tickets.add(["4", "5"])
    taken, from_tickets = tickets.take(4)
    assert taken == ["1", "2", "3", "4"]
    assert from_tickets == [first, second]
    tickets.finish(from_tickets)
    assert first.done.is_set()
    assert not second.done.is_set()  # "5" still waits
    assert tickets.take(10) == (["5"], [second])


def test_ids_of_a_failed_claim_are_given_back() -> None:
    tickets = JobTickets()
    ticket = tickets.add(["1", "2"])
    taken, from_tickets = tickets.take(1)
    tickets.give_back(taken, from_tickets)
    assert ticket.waiting == ["1", "2"]
    taken, from_tickets = tickets.take(5)
    assert taken == ["1", "2"]
    tickets.finish(from_tickets)
    assert ticket.done.is_set()
    assert not tickets.tickets
