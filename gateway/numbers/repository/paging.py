"""Offset paging for ordered queries, without a count query."""

from __future__ import annotations

from typing import Generic, NamedTuple, TypeVar

from sqlalchemy import Select
from sqlalchemy.orm import Session

Row = TypeVar("Row")


class Page(NamedTuple, Generic[Row]):
    """One page of rows, and whether more rows follow it."""

    rows: list[Row]
    more: bool


def page(session: Session, query: Select[Row], skip: int, top: int) -> Page[Row]:
    """Rows ``skip`` .. ``skip + top`` of an ordered query, and whether more follow (one extra row
    is read to know, so no count query is needed)."""
    rows = list(session.scalars(query.offset(skip).limit(top + 1)))
    return Page(rows[:top], len(rows) > top)
