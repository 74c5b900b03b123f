"""searchAfter pagination: follow the last item's cursor until a short page."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from ..errors import UnexpectedResponseError

__all__ = ["iter_search_after"]

P = TypeVar("P")
I = TypeVar("I")  # noqa: E741


def iter_search_after(fetch: Callable[[list[Any] | None], P], items: Callable[[P], list[I]],
                      cursor: Callable[[I], list[Any] | None], page_limit: int,
                      max_pages: int | None = None) -> Iterator[I]:
    """Yield every item of a searchAfter-paged search, one page (one request) at a time.

    Args:
        fetch: sends one search with the given ``searchAfter`` (None for the first page).
        items: the page's items; cursor: an item's ``searchAfter``.
        page_limit: the page size asked for; a shorter page is the last one.
        max_pages: stop after this many pages (None: no limit).
    """
    after: list[Any] | None = None
    pages = 0
    while True:
        batch = items(fetch(after))
        pages += 1
        yield from batch
        if len(batch) < page_limit or (max_pages is not None and pages >= max_pages):
            return
        nxt = cursor(batch[-1])
        if not nxt:
            return
        if nxt == after:
            raise UnexpectedResponseError("searchAfter cursor did not advance; stopping instead of looping")
        after = nxt
