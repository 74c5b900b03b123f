"""Merging the model's answers into the offline matcher's map.

The matcher's proposal stays the default; the model's answer moves confidence and is recorded in
``reasons`` with a fixed prefix a reader (the review page, a script) can find:

=============================  =======================================================================
``model agrees: ...``           same target: confidence rises toward ``1 - (1-a)(1-b)``
``disagreement: ...``           different targets: the matcher's stays, confidence drops below the
                                review threshold, both proposals named (``model proposes patient.zip;
                                matcher proposes patient.city``)
``model only: ...``             the matcher had nothing, the model names a target: taken at a moderate
                                confidence (``MODEL_ONLY``, below the review threshold)
``model unavailable: ...``      no usable answer for the column (HTTP error, timeout, invalid JSON):
                                the matcher's entry unchanged, the reason a short phrase, no content
``model answer rejected: ...``  the model named a target that does not exist: the matcher's entry stays
=============================  =======================================================================
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass

from .model import Entry, Mapping
from .model_prompt import ColumnAnswer
from .objectmap import VALUE_LABELS, target_for

__all__ = ["AGREE", "DISAGREE", "MODEL_ONLY", "MODEL_ONLY_PREFIX", "MODEL_WEIGHT", "MergeCounts", "NO_ANSWER",
           "REVIEW", "agreed", "disagreed", "merge"]

AGREE = "model agrees: "
DISAGREE = "disagreement: "
MODEL_ONLY_PREFIX = "model only: "
NO_ANSWER = "model unavailable: no answer for the column"
#: what the model's answer alone is worth (it is not asked for a confidence: self-reports are unreliable)
MODEL_WEIGHT = 0.7
#: the confidence of a target only the model proposed (below REVIEW: a person looks at it)
MODEL_ONLY = 0.6
#: entries below this are listed for review (``map propose``'s threshold)
REVIEW = 0.8


def agreed(a: float, b: float = MODEL_WEIGHT) -> float:
    """Two independent proposals of the same target: the chance both are wrong shrinks."""
    return round(1 - (1 - a) * (1 - b), 3)


def disagreed(a: float, b: float = MODEL_WEIGHT) -> float:
    """The matcher's target contradicted: lower, and always below the review threshold."""
    return round(min(REVIEW - 0.05, a * (1 - b / 2)), 3)


@dataclass
class MergeCounts:
    agreed: int = 0
    disagreed: int = 0
    model_only: int = 0
    fallbacks: int = 0  # columns without a usable answer (request failed, answer rejected or missing)


def _name(table: str | None, column: str | None, split: str | None = None) -> str:
    if not (table and column):
        return "no canonical column"
    return f"{table}.{column}" + (f" (list split on {split!r})" if split else "")


def _from_model(e: Entry, ans: ColumnAnswer, reasons: list[str]) -> Entry:
    ft = target_for(ans.table, ans.column)
    return Entry(source=e.source, table=ans.table, column=ans.column, target=ft.target, type=ft.type,
                 confidence=MODEL_ONLY, reasons=[*reasons, *([ft.reason] if ft.reason else [])], phi=ft.phi,
                 label=ft.label or None, values=VALUE_LABELS.get((ans.table, ans.column)), split=ans.split)


def _merge_one(e: Entry, ans: ColumnAnswer | None, taken: set[tuple[str, str]], has_table: bool,
               n: MergeCounts) -> Entry:
    mine = _name(e.table, e.column, e.split)
    if e.column is not None:  # the matcher named a target
        if ans is not None and (ans.table, ans.column, ans.split) == (e.table, e.column, e.split):
            n.agreed += 1
            return e.model_copy(update={"confidence": agreed(e.confidence),
                                        "reasons": [*e.reasons, f"{AGREE}{mine}"]})
        n.disagreed += 1
        theirs = _name(ans.table, ans.column, ans.split) if ans else "no canonical column"
        return e.model_copy(update={"confidence": disagreed(e.confidence), "reasons": [
            *e.reasons, f"{DISAGREE}model proposes {theirs}; matcher proposes {mine}"]})
    if ans is None:
        n.agreed += 1
        return e.model_copy(update={"reasons": [*e.reasons, f"{AGREE}no canonical column fits"]})
    theirs = _name(ans.table, ans.column, ans.split)
    if (ans.table, ans.column) in taken or not has_table:
        n.disagreed += 1
        why = "another column of the file maps it" if has_table else "the file has no table"
        return e.model_copy(update={"confidence": min(e.confidence, disagreed(e.confidence)), "reasons": [
            *e.reasons, f"{DISAGREE}model proposes {theirs} ({why}); matcher proposes {mine}"]})
    n.model_only += 1
    taken.add((ans.table, ans.column))
    return _from_model(e, ans, [*e.reasons, f"{MODEL_ONLY_PREFIX}model proposes {theirs}; the matcher "
                                            f"had no match (kept at {MODEL_ONLY:.2f}: review it)"])


def merge(mapping: Mapping, answers: MappingABC[str, ColumnAnswer | None],
          files: MappingABC[str, str | None], failed: MappingABC[str, str]) -> tuple[Mapping, MergeCounts]:
    """``answers``: source -> the model's valid answer (None: nothing fits); ``files``: stem -> the
    model's primary table; ``failed``: source -> why there is no usable answer (a reason, no content).
    A column in none of them got no answer. Returns the merged map (entries of a file sorted by
    confidence, lowest first) and what happened."""
    n = MergeCounts()
    out_files = dict(mapping.files)
    file_notes: dict[str, str] = {}
    for stem, table in files.items():
        mine = mapping.files.get(stem)
        if table is not None and mine is None:
            out_files[stem] = table
            file_notes[stem] = (f"{MODEL_ONLY_PREFIX}model proposes file {stem} is {table}; "
                                "the matcher had none")
        elif table != mine:
            theirs = f"file {stem} is {table}" if table else f"no table for file {stem}"
            file_notes[stem] = f"{DISAGREE}model proposes {theirs}; matcher proposes {mine}"
    taken: dict[str, set[tuple[str, str]]] = {}
    for e in mapping.fields:
        if e.table and e.column:
            taken.setdefault(e.file, set()).add((e.table, e.column))
    by_file: dict[str, list[Entry]] = {}
    for e in mapping.fields:
        if e.source in failed:
            n.fallbacks += 1
            new = e.model_copy(update={"reasons": [*e.reasons, failed[e.source]]})
        elif e.source not in answers:
            n.fallbacks += 1
            new = e.model_copy(update={"reasons": [*e.reasons, NO_ANSWER]})
        else:
            new = _merge_one(e, answers[e.source], taken.setdefault(e.file, set()), e.file in out_files, n)
        if e.file in file_notes:
            new = new.model_copy(update={"reasons": [*new.reasons, file_notes[e.file]]})
        by_file.setdefault(e.file, []).append(new)
    fields = [x for group in by_file.values() for x in sorted(group, key=lambda x: x.confidence)]
    merged = mapping.model_copy(update={"files": out_files, "fields": fields})
    return Mapping.model_validate(merged.model_dump()), n  # the model's targets pass the map's own checks
