"""Requests counted by class: what every request of a run spent from the sub-account's quota, and why.

Every send is counted once, in exactly one class (so the classes add up to the total):

- ``write``: creates, updates, deletes, relations, uploads (every first send of a non-read call);
- ``lookup``: reads that find an earlier attempt of a create (an ambiguous failure's lookup, the
  writer's look before re-creating an uncertain key), and any other record read outside a scope;
- ``discovery``: reads that find what already exists before creating (a pre-create inventory by pages);
- ``verify``: read-backs of what the run wrote (search pages, notes lists, calendar ranges);
- ``schema``: the location, custom fields, objects, associations, pipelines, calendars, users, tags;
- ``retry``: every re-send of a call after a 429, a 5xx, a timeout or a reset (its first send is in
  its own class; the re-sends are here, whatever the call);
- ``auth``: requests to the OAuth token endpoint (a refresh of an expiring or refused access token;
  outside the API's quota, counted all the same: every request is).

The client derives the class from the call (method and path template) and from the scope its caller
set (``counting_as(client, "verify")``); ``Tally`` is the sum that crosses threads, Ray actors and
Prefect tasks as a plain dict.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CLASSES", "SCHEMA_TEMPLATES", "READ_TEMPLATES", "Tally", "counting_as", "snapshot", "minute_of"]

CLASSES = ("write", "lookup", "discovery", "verify", "schema", "retry", "auth")
# reads of the location's set-up (prepare, providers, tenancy, provisioning checks)
SCHEMA_TEMPLATES = frozenset({
    "/locations/{locationId}", "/locations/{locationId}/customFields", "/locations/{locationId}/tags",
    "/custom-fields/object-key/{objectKey}", "/objects/", "/associations/", "/opportunities/pipelines",
    "/calendars/", "/users/", "/users/search", "/workflows/"})
# POSTs that only read
READ_TEMPLATES = frozenset({"/contacts/search", "/objects/{schemaKey}/records/search"})


def minute_of(ts: float) -> str:
    """The UTC minute a request was sent in (the report's per-minute chart)."""
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def class_of(method: str, template: str, attempt: int, scope: str | None) -> str:
    if attempt > 1:
        return "retry"
    if scope:
        return scope
    if method == "GET" or template in READ_TEMPLATES:
        return "schema" if template in SCHEMA_TEMPLATES else "lookup"
    return "write"


@dataclass
class Tally:
    """Requests by class, by UTC minute, and the 429 answers among them."""

    by_class: Counter[str] = field(default_factory=Counter)
    per_minute: Counter[str] = field(default_factory=Counter)
    http_429: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_class.values())

    def count(self, cls: str, ts: float) -> None:
        self.by_class[cls] += 1
        self.per_minute[minute_of(ts)] += 1

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.by_class + other.by_class, self.per_minute + other.per_minute,
                     self.http_429 + other.http_429)

    def __sub__(self, other: Tally) -> Tally:
        return Tally(self.by_class - other.by_class, self.per_minute - other.per_minute,
                     self.http_429 - other.http_429)

    def copy(self) -> Tally:
        return Tally(Counter(self.by_class), Counter(self.per_minute), self.http_429)

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "by_class": {c: self.by_class[c] for c in CLASSES if self.by_class[c]}
                | {c: n for c, n in self.by_class.items() if c not in CLASSES and n},
                "per_minute": dict(sorted(self.per_minute.items())), "http_429": self.http_429}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Tally:
        d = d or {}
        return cls(Counter(d.get("by_class") or {}), Counter(d.get("per_minute") or {}),
                   int(d.get("http_429", 0)))

    @classmethod
    def sum(cls, items: Any) -> Tally:
        out = cls()
        for t in items:
            out = out + (t if isinstance(t, Tally) else cls.from_dict(t))
        return out


def snapshot(client: object) -> Tally:
    """A copy of the client's counts so far (an empty tally for a client that counts nothing)."""
    t = getattr(client, "tally", None)
    return t.copy() if isinstance(t, Tally) else Tally()


@contextlib.contextmanager
def counting_as(client: object, cls: str) -> Iterator[None]:
    """Count the requests ``client`` sends in this block (this thread) as ``cls``."""
    scope = getattr(client, "_scope", None)
    if scope is None:
        yield
        return
    before = getattr(scope, "cls", None)
    scope.cls = cls
    try:
        yield
    finally:
        scope.cls = before
