"""Shaped exports: what the matcher needs beyond one-file-one-table.

- **Linked tables** (a denormalised file): a coverage file's rows are patient coverages, yet carry the
  subscriber's, the plan's and the carrier's columns. The tables a file's primary table reaches by
  its foreign keys (``patins -> inssub -> insplan -> insco``) are candidates for its columns too.
- **List columns**: one cell holds several items (procedure codes separated by ``;``, ``,`` or
  spaces), each a row of a child table (``apptproc``, whose key includes ``appt_id``).
- **Split tables**: two files of one table (demographics + contacts) joined on the table's key.

Only shares and counts leave this module (reasons name columns, tables and percentages), never a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache

from ..model import TABLES
from .names import name_similarity, normalize

__all__ = ["ListColumn", "find_list_column", "key_overlap", "linked_tables", "split_reason"]

#: tables never proposed as a denormalised file's extra columns: the contact comes from its own file,
#: lookups are code tables
_NOT_LINKED = frozenset({"patient", "lookup"})
#: how far foreign keys are followed from the primary table (patins -> inssub -> insplan -> insco)
LINK_DEPTH = 3
#: what one item of a list column looks like, by the table its canonical column refers to
ITEM_PATTERNS: dict[str, tuple[re.Pattern[str], str]] = {
    "proccode": (re.compile(r"^D\d{4}[A-Z]?$"), "CDT procedure codes (D + 4 digits)"),
}
_SEP = re.compile(r"[;,\s]+")
_SEP_ORDER = ";, \t"


@lru_cache(maxsize=64)
def linked_tables(primary: str) -> tuple[tuple[str, str], ...]:
    """Tables ``primary`` reaches through its foreign keys, nearest first, each with the path that
    reaches it (``patins.sub_rec_id -> inssub.plan_id -> insplan``)."""
    out: dict[str, str] = {}
    frontier: list[tuple[str, tuple[str, ...]]] = [(primary, ())]
    for _ in range(LINK_DEPTH):
        nxt = []
        for table, steps in frontier:
            for col in TABLES[table].columns:
                if not col.fk or col.fk in (table, primary) or col.fk in out or col.fk in _NOT_LINKED:
                    continue
                path = (*steps, f"{table}.{col.name}")
                out[col.fk] = " -> ".join((*path, col.fk))
                nxt.append((col.fk, path))
        frontier = nxt
    return tuple(out.items())


@dataclass(frozen=True)
class ListColumn:
    """A header whose cells are lists of a child table's column values."""

    table: str
    column: str
    split: str
    reason: str


def _children(primary: str) -> list[tuple[str, str, str]]:
    """(child table, its key column referring to ``primary``, item column) with a known item shape, for
    the detail tables of ``primary`` only: the reference is part of the child's key (``apptproc.appt_id``),
    so a child row is nothing but an item of its parent's list (a ledger row, which merely refers to
    its patient, is not)."""
    out: list[tuple[str, str, str]] = []
    for t in TABLES.values():
        refs = [c for c in t.columns if c.fk == primary and c.pk and t.name != primary]
        if refs:
            out += [(t.name, refs[0].name, col.name) for col in t.columns if col.fk in ITEM_PATTERNS]
    return out


def find_list_column(primary: str, header: str, values: Sequence[str]) -> ListColumn | None:
    """``header`` as a list column of a child of ``primary``: most non-blank cells split by ``;``, ``,``
    or whitespace into items that each look like the child column's codes, several with 2+ items."""
    cells = [v.strip() for v in values if v and v.strip()]
    if len(cells) < 3:
        return None
    kids = _children(primary)
    if not kids:
        return None
    seps: set[str] = set()
    multi = items = 0
    parts: list[str] = []
    for cell in cells:
        found = _SEP.findall(cell)
        cell_items = [p for p in _SEP.split(cell) if p]
        parts.extend(cell_items)
        if len(cell_items) > 1:
            multi += 1
            seps.update(ch for sep in found for ch in sep)
        items += len(cell_items)
    if multi < max(2, 0.1 * len(cells)) or not items:
        return None
    best: tuple[float, str, str, str, float, str] | None = None
    for child, ref, col in kids:
        rx, what = ITEM_PATTERNS[TABLES[child].by_name[col].fk or ""]
        share = sum(1 for p in parts if rx.match(p)) / items
        if share < 0.9:
            continue
        rank = name_similarity(normalize(header), normalize(f"{child} {col}"))
        if best is None or rank > best[0]:
            best = (rank, child, ref, col, share, what)
    if best is None:
        return None
    _, child, ref, col, share, what = best
    split = "".join(ch for ch in _SEP_ORDER if ch in seps) or " "
    reason = (f"list column: {round(100 * multi / len(cells))} % of {len(cells)} sampled cells hold 2+ items "
              f"separated by {split!r}, {round(100 * share)} % of the items look like {what}: one {child} "
              f"row per item, {child}.{col} = the item, {child}.{ref} = the {primary} row's key")
    return ListColumn(child, col, split, reason)


def key_overlap(a: Sequence[str], b: Sequence[str]) -> float:
    """Share of ``a``'s non-blank sampled keys that ``b``'s sample holds too (ids, compared in memory)."""
    ka = {v.strip() for v in a if v and v.strip()}
    kb = {v.strip() for v in b if v and v.strip()}
    return len(ka & kb) / len(ka) if ka else 0.0


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 0.0


def split_reason(table: str, file: str, columns: Mapping[str, set[str]],
                 keys: Mapping[str, Sequence[str]]) -> tuple[str, float]:
    """How ``file`` relates to the other files of ``table`` (``columns``: each file's canonical columns,
    ``keys``: each file's sampled key values) and the cap on its confidence: parts of the table's rows
    (the same columns), or its columns split over files joined on the key (demographics + contacts)."""
    others = [g for g in columns if g != file]
    key = TABLES[table].pk[0] if len(TABLES[table].pk) == 1 else None
    mine = columns[file] - {key}
    n = len(columns)
    same = [g for g in others if mine and _jaccard(mine, columns[g] - {key}) >= 0.8]
    if same:
        return f"one of {n} files of {table} with the same columns as {same[0]}: parts of its rows", 1.0
    if key is None:
        return f"one of {n} files of {table}, whose key has several columns: check how they join", 0.5
    if not keys.get(file):
        return (f"one of {n} files of {table}, but no column of it is {table}'s key {key}: map its key "
                "column, the reader joins the files on it", 0.4)
    best = max(others, key=lambda g: key_overlap(keys[file], keys.get(g, ())))
    share = key_overlap(keys[file], keys.get(best, ()))
    return (f"one of {n} files of {table} (with {best}): joined on {key}, {round(100 * share)} % "
            f"of its sampled keys are in {best}'s sample", 1.0 if share >= 0.5 else 0.5)
