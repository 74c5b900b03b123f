"""What the migration's steps hand each other: typed, JSON-able (they cross Prefect task boundaries and
are kept as results), ids and counts only."""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..highlevel.tally import Tally
from ..planning.plan import ShardSpec

__all__ = ["Prepared", "VerifyResult", "WriteResult", "merge_diffs"]

MEASURES = ("staged", "written", "created", "failed", "held", "excluded", "present", "updated")


class Prepared(BaseModel):
    """The run's facts once its gates without a person have passed (``prepare``): where it lives, the
    confirmed map, each location's schema and shards, owners, zones, tenancy."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    run_uri: str
    staged_uri: str
    mapping: dict[str, Any]
    mapping_path: str
    locations: list[str]  # export LOC_IDs
    schemas: dict[str, dict[str, Any]]  # LOC -> LocationSchema dict
    shards: dict[str, list[int]]  # LOC -> shard numbers holding patients
    confirmation: dict[str, Any]
    providers: dict[str, Any]
    phi_key_file: str | None = None
    manifest: dict[str, Any] = Field(default_factory=dict)
    zones: dict[str, str] = Field(default_factory=dict)  # every office's zone, LOC_ID -> IANA (zones.py)
    # LOC_ID -> {"office": the export's LOC_NAME, "location_id", "sub_account": its name in HighLevel}
    tenancy: dict[str, dict[str, str]] = Field(default_factory=dict)
    pause_after: int = 5  # outages in a row that pause a location (DOS2HL_HIGHLEVEL_PAUSE_AFTER)

    def specs(self, patients: dict[str, list[int]] | None = None) -> list[ShardSpec]:
        return [ShardSpec(self.run_id, self.run_uri, self.staged_uri, self.mapping, loc, shard,
                          self.schemas[loc],
                          None if patients is None else patients.get(loc, []), self.phi_key_file,
                          self.manifest.get("source"), dict(self.zones), self.pause_after)
                for loc in self.locations for shard in self.shards[loc]]


class WriteResult(BaseModel):
    """One write phase (``sample``, ``full``, ``bulk``): every shard's counts, the sample's patients,
    what discovery found already present."""

    phase: str
    shards: list[dict[str, Any]]
    diff: dict[str, Any] = Field(default_factory=dict)
    sample: dict[str, list[int]] | None = None
    discovery: dict[str, dict[str, Any]] = Field(default_factory=dict)  # LOC -> {"requests", "found"}
    # LOC -> why it paused (issue 17); a read-back of this phase skips them (their token may be revoked)
    paused: dict[str, str] = Field(default_factory=dict)
    # LOC -> when its spent daily quota resets (epoch seconds): a paused location that only waits for that
    resume_at: dict[str, float] = Field(default_factory=dict)

    @staticmethod
    def resume_at_of(shards: list[dict[str, Any]]) -> dict[str, float]:
        """LOC -> the latest reset its shards wait for, when each of its paused shards only waits for
        its spent day (a location also paused for another cause needs that fixed: not listed)."""
        out: dict[str, float] = {}
        other: set[str] = set()
        for r in shards:
            if r.get("paused") and r.get("resume_at") is None:
                other.add(r["location"])
            elif r.get("paused"):
                out[r["location"]] = max(out.get(r["location"], 0.0), float(r["resume_at"]))
        return {loc: at for loc, at in sorted(out.items()) if loc not in other}

    @staticmethod
    def paused_of(shards: list[dict[str, Any]]) -> dict[str, str]:
        """LOC -> the first reason one of its shards paused for."""
        out: dict[str, str] = {}
        for r in shards:
            if r.get("paused"):
                out.setdefault(r["location"], r["paused"])
        return dict(sorted(out.items()))

    def totals(self) -> dict[str, dict[str, Counter[str]]]:
        """LOC -> measure -> object -> n."""
        out: dict[str, dict[str, Counter[str]]] = {}
        for r in self.shards:
            loc = out.setdefault(r["location"], {m: Counter() for m in MEASURES})
            for m in loc:
                loc[m].update(r.get(m, {}))
        return out

    def failed(self) -> int:
        return sum(sum(r.get("failed", {}).values()) + sum(r.get("held", {}).values()) for r in self.shards)

    def nodes(self) -> dict[str, dict[str, int]]:
        """Where the shards ran (Ray node id -> shards), and the shards started again after their worker
        was lost (``retried``); empty when they ran on this process's threads."""
        ran = Counter(str(r["node"]) for r in self.shards if r.get("node"))
        return {"shards": dict(sorted(ran.items())),
                "retried": {"shards": sum(1 for r in self.shards if r.get("retried")),
                            "attempts": sum(int(r.get("retried") or 0) for r in self.shards)}} if ran else {}


class VerifyResult(BaseModel):
    """The read-back of a phase: per object what was read and not found, per field the comparison's
    counts, example stable keys, mismatches, and the reads' requests by class."""

    read_back: dict[str, int] = Field(default_factory=dict)
    not_found: dict[str, int] = Field(default_factory=dict)
    fields: dict[str, dict[str, dict[str, int]]] = Field(default_factory=dict)
    examples: dict[str, list[str]] = Field(default_factory=dict)
    mismatches: int = 0
    tally: dict[str, Any] = Field(default_factory=dict)
    # LOC -> why its read-back paused (issue 17: a spent day, a refused token); its verified shards are
    # kept (``verified``) and a resumed run reads back the rest
    paused: dict[str, str] = Field(default_factory=dict)
    # LOC -> when its spent daily quota resets (epoch seconds): a read-back that only waits for that
    resume_at: dict[str, float] = Field(default_factory=dict)


def merge_diffs(diffs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"read_back": Counter(), "not_found": Counter(), "fields": {}, "examples": {},
                           "mismatches": 0, "tally": Tally.sum(d.get("tally") for d in diffs).to_dict()}
    for d in diffs:
        out["read_back"].update(d["read_back"])
        out["not_found"].update(d["not_found"])
        out["mismatches"] += d["mismatches"]
        for obj, fields in d["fields"].items():
            for name, c in fields.items():
                acc = out["fields"].setdefault(obj, {}).setdefault(name, Counter())
                acc.update(c)
        for k, keys in d["examples"].items():
            out["examples"].setdefault(k, [])
            out["examples"][k] = (out["examples"][k] + keys)[:5]
    out["read_back"], out["not_found"] = dict(out["read_back"]), dict(out["not_found"])
    out["fields"] = {o: {f: dict(c) for f, c in fs.items()} for o, fs in out["fields"].items()}
    return out
