"""Search semantics shared by contact, record and opportunity search: filters, sort, cursors.

Filters follow HighLevel's advanced search (NOTES.md §2.1): ``{field, operator, value}`` or
``{group: AND|OR, filters: [...]}``; top-level filters are ANDed. ``customFields.<id>`` reads a
contact custom field. String comparisons ignore case; a list field "equals" a value it contains.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from .core import ApiError

__all__ = ["matches", "field_value", "paginate", "sort_key_value"]

_OPERATORS = ("eq", "not_eq", "contains", "not_contains", "exists", "not_exists", "range")


def field_value(doc: dict[str, Any], name: str) -> Any:
    """A document's value for a search field (dotted paths, ``customFields.<id>``)."""
    if name.startswith("customFields."):
        wanted = name.split(".", 1)[1]
        for item in doc.get("customFields") or []:
            if item.get("id") == wanted:
                return item.get("value")
        return None
    node: Any = doc
    for part in name.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _norm(v: Any) -> Any:
    return v.lower() if isinstance(v, str) else v


def _eq(actual: Any, expected: Any) -> bool:
    if isinstance(actual, list):
        return any(_eq(a, expected) for a in actual)
    if isinstance(expected, list):
        return any(_eq(actual, e) for e in expected)
    if isinstance(actual, (int, float)) and isinstance(expected, str):
        try:
            return float(expected) == actual
        except ValueError:
            return False
    return _norm(actual) == _norm(expected)


def _comparable(v: Any) -> Any:
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000
        except ValueError:
            try:
                return float(v)
            except ValueError:
                return v
    return v


def _range(actual: Any, bounds: Any) -> bool:
    if actual is None or not isinstance(bounds, dict):
        return False
    a = _comparable(actual)
    try:
        for op, fn in (("gt", lambda x, y: x > y), ("gte", lambda x, y: x >= y),
                       ("lt", lambda x, y: x < y), ("lte", lambda x, y: x <= y)):
            if op in bounds and not fn(a, _comparable(bounds[op])):
                return False
    except TypeError:
        return False
    return True


def matches(doc: dict[str, Any], flt: dict[str, Any],
            getter: Callable[[dict[str, Any], str], Any] = field_value) -> bool:
    """Whether ``doc`` satisfies one filter (or filter group)."""
    if "group" in flt:
        results = [matches(doc, f, getter) for f in flt.get("filters") or []]
        return any(results) if flt["group"] == "OR" else all(results)
    name, op, value = flt.get("field"), flt.get("operator"), flt.get("value")
    if not name or op not in _OPERATORS:
        raise ApiError(400, f"Invalid filter on field {name}", error="Bad Request")
    actual = getter(doc, name)
    present = actual not in (None, "", [])
    if op == "exists":
        return present
    if op == "not_exists":
        return not present
    if op == "eq":
        return present and _eq(actual, value)
    if op == "not_eq":
        return not (present and _eq(actual, value))
    if op in ("contains", "not_contains"):
        hit = present and str(value).lower() in (" ".join(map(str, actual)) if isinstance(actual, list)
                                                 else str(actual)).lower()
        return hit if op == "contains" else not hit
    return _range(actual, value)


def sort_key_value(v: Any) -> tuple[int, Any]:
    """A total order over mixed values (None last)."""
    if v is None:
        return (2, "")
    c = _comparable(v)
    return (0, c) if isinstance(c, float) else (1, str(c).lower())


def paginate(docs: list[dict[str, Any]], *, sort: list[dict[str, str]],
             getter: Callable[[dict[str, Any], str], Any],
             page_limit: int, page: int | None, search_after: list[Any] | None,
             max_window: int = 10_000) -> tuple[list[tuple[dict[str, Any], list[Any]]], int]:
    """Sort, then cut one page; each hit carries its ``searchAfter`` cursor ([sort values..., id])."""
    if page is not None and search_after:
        raise ApiError(400, "page and searchAfter cannot be used together", error="Bad Request")
    keys = sort or [{"field": "dateAdded", "direction": "desc"}]

    def cursor(doc: dict[str, Any]) -> list[Any]:
        out = []
        for k in keys:
            c = _comparable(getter(doc, k["field"]))
            out.append(c if not isinstance(c, str) else c.lower())
        return [*out, doc["id"]]

    def order(doc: dict[str, Any]) -> tuple[Any, ...]:
        parts: list[Any] = []
        for k in keys:
            rank, val = sort_key_value(getter(doc, k["field"]))
            if k.get("direction") == "desc":
                val = -val if isinstance(val, float) else _Rev(val)
            parts.append((rank, val))
        return (*parts, doc["id"])

    ordered = sorted(docs, key=order)
    total = len(ordered)
    if search_after:
        # The cursor ends with the document id (unique), which locates it in the ordering.
        start = next((i + 1 for i, d in enumerate(ordered) if d["id"] == search_after[-1]), None)
        if start is None:
            raise ApiError(400, "searchAfter does not point at a known document", error="Bad Request")
        window = ordered[start:start + page_limit]
    else:
        first = ((page or 1) - 1) * page_limit
        if first + page_limit > max_window:
            raise ApiError(400, f"page mode is limited to {max_window} results; use searchAfter",
                           error="Bad Request")
        window = ordered[first:first + page_limit]
    return [(d, cursor(d)) for d in window], total


class _Rev:
    """Reverses string order inside a sort key."""

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: "_Rev") -> bool:
        return self.v > other.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Rev) and self.v == other.v
