"""Cursor pagination, newest first, the way every list endpoint pages: `limit` and `starting_after`.

Ids are time-ordered (`hanoipay.ids`), so "newest first" is "id descending" and the cursor is the last
id of a page. A list endpoint returns `ListOut[ItemOut]`: `data`, `has_more` and `next_cursor`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import BaseModel
from sqlalchemy import Select
from sqlalchemy.orm import InstrumentedAttribute, Session

T = TypeVar("T")
Item = TypeVar("Item", bound=BaseModel)

Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=40, description="Return items after this id (next_cursor)")]


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of rows and whether more follow it."""

    items: list[T]
    has_more: bool
    cursor_of: Callable[[T], str]

    @property
    def next_cursor(self) -> str | None:
        """What to pass as `starting_after` for the next page, or None on the last one."""
        return self.cursor_of(self.items[-1]) if self.has_more else None


def paginate(
    session: Session,
    query: Select[T],
    id_column: InstrumentedAttribute[str],
    *,
    limit: int,
    starting_after: str | None,
) -> Page[T]:
    """The rows of `query`, newest (highest id) first, one page after the cursor."""
    query = query.order_by(id_column.desc()).limit(limit + 1)
    if starting_after:
        query = query.where(id_column < starting_after)
    rows = list(session.scalars(query))
    key = id_column.key
    return Page(rows[:limit], len(rows) > limit, lambda row: str(getattr(row, key)))


class ListOut(BaseModel, Generic[Item]):
    """A page of a list endpoint's answer."""

    object: Literal["list"] = "list"
    data: list[Item]
    has_more: bool
    next_cursor: str | None

    @classmethod
    def of(cls, page: Page[Any], convert: Callable[[Any], Item]) -> "ListOut[Item]":
        """The page's rows converted to their response model."""
        return cls(
            data=[convert(row) for row in page.items], has_more=page.has_more, next_cursor=page.next_cursor
        )
