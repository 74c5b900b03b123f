"""What each shard of a staging will send, counted: the quota planner's one expensive step.

Every shard is reduced to counts right away (payloads by kind, patients, years of calendar events,
parents with notes or files), so only the counts cross a process boundary. The counts are those of the
run's own plan (``plan.plan_shard``, counted by ``counted_plan``) but taken without building its payloads
(``tally.tally_shard``: the columns that decide each payload, the run's rules, the note conversion only
where a picture may be: the same answer for a fraction of the CPU). A plan of a DSO (a million patients:
thousands of shards) is still CPU-bound Python, so shards are counted in ``jobs`` worker processes when
there are enough of them to pay for the workers' start (each imports the library); a small export is
counted in this process.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from . import tally as _tally
from .plan import ShardSpec
from .tally import LocationCounts
from .transform import OBJECT_NAMES

__all__ = ["LocationCounts", "MIN_SHARDS_PER_JOB", "count_shards", "counted_plan", "default_jobs", "kinds_of"]

#: below this many shards per extra worker, starting the worker (a fresh interpreter importing the library,
#: ~3 s) costs more than it saves: a test world of a few dozen patients stays in this process; a 20 k practice
#: (64 shards) plans on 2
MIN_SHARDS_PER_JOB = 32


def kinds_of(plan: Any, relations: Mapping[str, str]) -> Counter[str]:
    """One shard's payloads by kind: contact, record (by object), relation, opportunity, event, note, file."""
    c: Counter[str] = Counter()
    c["contact"] += len(plan.contacts)
    for r in plan.records:
        c[f"record:{OBJECT_NAMES[r.object_key]}"] += 1
        if relations.get(r.object_key, "association") == "association":
            c[f"relation:{OBJECT_NAMES[r.object_key]}"] += 1
    for o in plan.crm.opportunities:
        c[f"opportunity:{o.object}"] += 1
        c["event"] += o.event is not None
    for n in plan.crm.notes:
        c[f"note:{n.object}"] += 1
    for f in plan.crm.files:
        c[f"file:{f.object}"] += 1
        c["file_link"] += 1
    return c


def counted_plan(plan: Any, relations: Mapping[str, str]) -> LocationCounts:
    """A shard's plan (``plan_shard``'s), counted: what ``tally.tally_shard`` answers without building it."""
    return LocationCounts(
        kinds=kinds_of(plan, relations), patients=len(plan.contacts),
        years={_tally.utc_year(o.event.start) for o in plan.crm.opportunities if o.event is not None},
        noted=len({n.parent_key for n in plan.crm.notes} | {f.parent_key for f in plan.crm.files}))


def _count(spec: ShardSpec, relations: Mapping[str, str]) -> tuple[str, LocationCounts]:
    # through the module: a test may watch (or check) every shard's count
    return spec.location, _tally.tally_shard(spec, relations)


def default_jobs() -> int:
    """The CPUs this process may use (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def count_shards(specs: Iterable[ShardSpec], relations: Mapping[str, str], *,
                 jobs: int | None = None) -> dict[str, LocationCounts]:
    """Every shard planned and counted, added up per location. ``jobs``: worker processes (default: the
    CPUs this process may use), used only when there are ``MIN_SHARDS_PER_JOB`` shards per extra worker;
    1 plans here. The result does not depend on ``jobs``."""
    todo = list(specs)
    n = min(jobs or default_jobs(), max(1, len(todo) // MIN_SHARDS_PER_JOB + 1))
    out: dict[str, LocationCounts] = {}
    if n <= 1:
        for spec in todo:
            loc, c = _count(spec, relations)
            out.setdefault(loc, LocationCounts()).add(c)
        return out
    # spawn: a fresh interpreter per worker (forking a process that may hold threads, a flow's or the
    # Arrow pool's, is unsafe); chunks of shards keep the pickling of specs small against their work
    with ProcessPoolExecutor(max_workers=n, mp_context=get_context("spawn")) as pool:
        rel = dict(relations)
        for loc, c in pool.map(_count, todo, [rel] * len(todo), chunksize=max(1, len(todo) // (n * 8))):
            out.setdefault(loc, LocationCounts()).add(c)
    return out
