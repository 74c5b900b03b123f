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
outage         ``LOCATION_ID@N`` or ``LOCATION_ID@N/KIND`` (repeatable): after the location's first N
               creates, every request with its token is refused, until restored (``DELETE
               /_sandbox/outages``): KIND ``token`` (default; 401 ``Invalid JWT``: a revoked app or a
               rotated token), ``scope`` (401 ``The token is not authorized for this scope.``),
               ``location`` (403 ``The token does not have access to this location.``: the
               sub-account gone) or ``5xx`` (503: HighLevel down). ``POST /_sandbox/outages``
               ``{"location_id", "after", "kind"}`` starts one while the sandbox runs.
=============  ==================================================================================

One random draw decides each request's fault, in a fixed order, so a run is reproducible.
Admin paths (``/_sandbox/...``) are never faulted.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

__all__ = ["FaultConfig", "FaultPlan", "Faults", "Outage", "parse_faults", "CREATE_OPERATIONS",
           "OUTAGE_KINDS"]

CREATE_OPERATIONS = frozenset({
    "contacts:create-contact", "contacts:create-note", "contacts:create-task",
    "opportunities:create-opportunity", "objects:create-object-record", "calendars:create-appointment",
})
_KINDS = ("5xx", "reset", "timeout", "storm429", "created422")
# what an outage answers, as HighLevel words it (docs/highlevel-errors.md): status, message, error
OUTAGE_KINDS: dict[str, tuple[int, str, str | None]] = {
    "token": (401, "Invalid JWT", None),
    "scope": (401, "The token is not authorized for this scope.", "Unauthorized"),
    "location": (403, "The token does not have access to this location.", None),
    "5xx": (503, "Service Unavailable", None),
}


@dataclass(frozen=True)
class Outage:
    """Every request with ``location_id``'s token refused as ``kind`` says, after its first ``after``
    creates (issue 17: a token revoked mid-run, a removed scope or sub-account, HighLevel down)."""

    location_id: str
    after: int = 0
    kind: str = "token"

    def __post_init__(self) -> None:
        if self.kind not in OUTAGE_KINDS:
            raise ValueError(f"outage kind {self.kind!r} unknown (known: {', '.join(OUTAGE_KINDS)})")
        if self.after < 0:
            raise ValueError("outage: after must be 0 or more")

    @classmethod
    def parse(cls, text: str) -> Outage:
        """``LOCATION_ID@N`` or ``LOCATION_ID@N/KIND``."""
        where, _, rest = text.partition("@")
        after, _, kind = rest.partition("/")
        if not where or not after:
            raise ValueError(f"outage {text!r}: expected LOCATION_ID@N or LOCATION_ID@N/KIND")
        return cls(where.strip(), int(after), kind.strip() or "token")


@dataclass(frozen=True)
class FaultConfig:
    latency: tuple[float, float] = (0.0, 0.0)
    rates: tuple[tuple[str, float], ...] = ()
    timeout_after: float = 35.0
    storm_len: int = 5
    seed: int = 0
    concurrency: int = 0  # 0: unbounded; else requests handled at once (the rest queue)
    outages: tuple[Outage, ...] = ()


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
    outages: list[Outage] = []
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
            elif key == "outage":
                outages.append(Outage.parse(value))
            elif key == "concurrency":
                concurrency = int(value)
                if concurrency < 0:
                    raise ValueError
            else:
                raise ValueError(f"fault {key!r} unknown (known: latency, {', '.join(_KINDS)}, "
                                 "timeout_after, storm_len, seed, concurrency, outage)")
        except ValueError as exc:
            raise ValueError(str(exc) or f"fault {part!r}: bad value") from None
    if sum(rates.values()) > 1.0:
        raise ValueError("fault rates add up to more than 1")
    return FaultConfig(latency, tuple((k, rates[k]) for k in _KINDS if k in rates), timeout_after,
                       storm_len, seed, concurrency, tuple(outages))


class Faults:
    """Draws one plan per API request from a seeded RNG."""

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._storm_left = 0
        self._lock = threading.Lock()
        self.outages: dict[str, Outage] = {o.location_id: o for o in config.outages}
        self._creates: dict[str, int] = {}  # creates per location since its outage was set

    def set_outage(self, outage: Outage) -> None:
        with self._lock:
            self.outages[outage.location_id] = outage
            self._creates[outage.location_id] = 0

    def restore(self, location_id: str | None = None) -> list[str]:
        """End the outage of ``location_id`` (every one when None); the locations restored."""
        with self._lock:
            if location_id is None:
                ended = list(self.outages)
            else:
                ended = [location_id] if location_id in self.outages else []
            for loc in ended:
                self.outages.pop(loc, None)
                self._creates.pop(loc, None)
            return ended

    def outage(self, location_id: str, operation_key: str) -> tuple[int, str, str | None] | None:
        """The refusal for this request (status, message, error) when its location's outage is on."""
        if not self.outages:
            return None
        with self._lock:
            o = self.outages.get(location_id)
            if o is None:
                return None
            done = self._creates.get(location_id, 0)
            if done >= o.after:
                return OUTAGE_KINDS[o.kind]
            if operation_key in CREATE_OPERATIONS:
                self._creates[location_id] = done + 1
            return None

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
