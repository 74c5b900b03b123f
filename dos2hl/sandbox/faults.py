"""Seeded, reproducible fault injection (``--faults``).

Spec: comma-separated ``key=value`` pairs, e.g.
``latency=50ms..200ms,5xx=0.02,reset=0.01,timeout=0.01,storm429=0.01,created422=0.02,seed=7``.

=============  ==================================================================================
latency        ``A..B`` (uniform) or ``A`` added before every API request; units ms or s
5xx            rate of 500/502/503 answers given *before* the request is processed (nothing stored)
reset          rate of dropped connections *after* the request is processed (a write may have landed)
timeout        rate of requests processed and then held ``timeout_after`` seconds before answering
timeout_after  how long a timeout holds the answer (default 35s: past a 30 s client timeout)
storm429       rate at which a 429 storm starts: ``storm_len`` consecutive 429s (default 5)
created422     rate at which a create (contact, note, task, opportunity, record, appointment) stores
               the record and still answers 422, as the real API does (issue #64)
seed           RNG seed (default 0): the same seed and request sequence give the same faults
concurrency    ``N``: at most N API requests are handled at once; the others wait in arrival order.
               A request is counted against the rate limits when its turn comes (at handling, the
               pessimistic model: a server that queues counts late), and ``latency`` is spent
               inside the slot (a slow handler). 0 (default): no bound.
=============  ==================================================================================

One random draw decides each request's fault, in a fixed order, so a run is reproducible.
Admin paths (``/_sandbox/...``) are never faulted.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

__all__ = ["FaultConfig", "FaultPlan", "Faults", "parse_faults", "CREATE_OPERATIONS"]

CREATE_OPERATIONS = frozenset({
    "contacts:create-contact", "contacts:create-note", "contacts:create-task",
    "opportunities:create-opportunity", "objects:create-object-record", "calendars:create-appointment",
})
_KINDS = ("5xx", "reset", "timeout", "storm429", "created422")


@dataclass(frozen=True)
class FaultConfig:
    latency: tuple[float, float] = (0.0, 0.0)
    rates: tuple[tuple[str, float], ...] = ()
    timeout_after: float = 35.0
    storm_len: int = 5
    seed: int = 0
    concurrency: int = 0  # 0: unbounded; else requests handled at once (the rest queue)


@dataclass(frozen=True)
class FaultPlan:
    latency_s: float
    kind: str | None  # one of _KINDS or None
    status: int = 0  # for 5xx


def _duration(text: str) -> float:
    text = text.strip().lower()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    if text.endswith("s"):
        return float(text[:-1])
    return float(text)


def parse_faults(spec: str | None) -> FaultConfig:
    """Parse a ``--faults`` string; raise ValueError naming the bad part."""
    if not spec:
        return FaultConfig()
    latency, rates, timeout_after, storm_len, seed, concurrency = (0.0, 0.0), {}, 35.0, 5, 0, 0
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep:
            raise ValueError(f"fault {part!r}: expected key=value")
        try:
            if key == "latency":
                lo, _, hi = value.partition("..")
                latency = (_duration(lo), _duration(hi or lo))
            elif key in _KINDS:
                rate = float(value)
                if not 0.0 <= rate <= 1.0:
                    raise ValueError
                rates[key] = rate
            elif key == "timeout_after":
                timeout_after = _duration(value)
            elif key == "storm_len":
                storm_len = int(value)
            elif key == "seed":
                seed = int(value)
            elif key == "concurrency":
                concurrency = int(value)
                if concurrency < 0:
                    raise ValueError
            else:
                raise ValueError(f"fault {key!r} unknown (known: latency, {', '.join(_KINDS)}, "
                                 "timeout_after, storm_len, seed, concurrency)")
        except ValueError as exc:
            raise ValueError(str(exc) or f"fault {part!r}: bad value") from None
    if sum(rates.values()) > 1.0:
        raise ValueError("fault rates add up to more than 1")
    return FaultConfig(latency, tuple((k, rates[k]) for k in _KINDS if k in rates), timeout_after,
                       storm_len, seed, concurrency)


class Faults:
    """Draws one plan per API request from a seeded RNG."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._storm_left = 0
        self._lock = threading.Lock()

    @property
    def active(self) -> bool:
        return bool(self.config.rates) or self.config.latency != (0.0, 0.0)

    def plan(self, operation_key: str) -> FaultPlan:
        with self._lock:
            lo, hi = self.config.latency
            latency = self._rng.uniform(lo, hi) if hi > 0 else 0.0
            u = self._rng.random()
            status = self._rng.choice((500, 502, 503))
            if self._storm_left > 0:
                self._storm_left -= 1
                return FaultPlan(latency, "storm429")
            edge = 0.0
            for kind, rate in self.config.rates:
                edge += rate
                if u < edge:
                    if kind == "created422" and operation_key not in CREATE_OPERATIONS:
                        return FaultPlan(latency, None)
                    if kind == "storm429":
                        self._storm_left = max(self.config.storm_len - 1, 0)
                    return FaultPlan(latency, kind, status if kind == "5xx" else 0)
            return FaultPlan(latency, None)
