"""Test doubles shared by several test folders."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any


class FakeClock:
    """A clock tests move by hand (rate-limit windows, index lag, dateAdded); client sleeps advance it."""

    def __init__(self, start: float = 1_750_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Snapshots:
    """A progress sink (``execution.progress``) that keeps every snapshot it is told, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def update(self, snap: dict[str, Any]) -> None:
        self.seen.append(("update", snap))

    def tick(self, snap: dict[str, Any]) -> None:
        self.seen.append(("tick", snap))

    def close(self, snap: dict[str, Any]) -> None:
        self.seen.append(("close", snap))


def packed_actor(lease: Callable[..., Any]) -> SimpleNamespace:
    """A stand-in for the governor actor's handle whose ``lease_packed.remote(blob)`` calls ``lease``
    (requests, reports) as ``GovernorHandle`` sends them pickled, and answers pickled as the actor does.
    ``lease`` may return the answer, or a thunk giving it (tests whose patched ``ray.get`` calls it)."""

    def remote(blob: bytes) -> Any:
        out = lease(*pickle.loads(blob))
        if callable(out):
            return lambda: pickle.dumps(out())
        return pickle.dumps(out)

    return SimpleNamespace(lease_packed=SimpleNamespace(remote=remote))
