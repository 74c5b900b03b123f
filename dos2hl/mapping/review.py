"""The review page's state, pure: the rows a person reviews (every column with its proposal, masked value
shapes, flags), the targets each column may take, and the edits applied back to a ``Mapping``.

Nothing here shows a value of the export except the pick-list codes of enum/status/code columns (see
``pick_values``); the shapes are ``shapes.mask``'s. The server (``review_server``) and the command line
(``dos2hl map review``) use it; the tests drive it without a browser.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as Mapping_
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, get_args

from pydantic import BaseModel, ConfigDict, ValidationError

from ..errors import ConfigError
from ..highlevel.models import DataType
from ..model import TABLES
from .merge import DISAGREE
from .model import Entry, Mapping
from .objectmap import OBJECTS, VALUE_LABELS, field_key, target_for
from .shapes import ColumnShape, column_shape, export_samples

__all__ = ["Edit", "LIST_SEPARATORS", "LOW_CONFIDENCE", "PHI_POLICIES", "ReviewError", "TYPES",
           "TargetOption", "apply_edits", "family_options", "pick_values", "read_export", "review_rows",
           "target_options"]

#: below this confidence an entry is listed first and flagged
LOW_CONFIDENCE = 0.8
#: the types a person may choose: HighLevel's data types, and STANDARD for standard fields
TYPES: tuple[str, ...] = ("STANDARD", *get_args(DataType))
PHI_POLICIES = ("send", "encrypt", "omit")
#: pick-list kinds: their values are codes of the practice's configuration, not of a patient
_PICK_KINDS = frozenset({"enum", "lookup", "code"})
_CODE = re.compile(r"^[A-Z0-9][A-Z0-9+\-/_.]{0,7}$")
_MAX_PICKS = 40
#: the separators a list column gets when a person points it at a detail table (``Entry.split``)
LIST_SEPARATORS = ";,| "


class ReviewError(ConfigError):
    """An edit the page sent cannot be applied (unknown column, target, type or policy): nothing written."""


@dataclass(frozen=True)
class TargetOption:
    """One target a column may take: a canonical column's default target, a custom field, or skip."""

    id: str  # skip | current | col:TABLE.COLUMN | new:TARGET
    target: str
    type: str
    phi: str
    text: str  # what the list shows
    table: str | None = None
    column: str | None = None
    label: str | None = None
    creates: bool = False  # a custom field the map needs created in HighLevel


@functools.cache
def _family(table: str) -> tuple[str, ...]:
    """Tables a column of ``table``'s file may feed: itself, the tables of the same custom object (a
    coverage file holds the carrier, the plan and the subscriber), and its children of the same kind
    (an appointment's procedure codes)."""
    spec = OBJECTS[table]
    out = [table]
    for name, other in OBJECTS.items():
        if name == table:
            continue
        same_object = bool(spec.object_key) and other.object_key == spec.object_key
        child = other.kind == spec.kind and any(c.fk == table for c in TABLES[name].columns)
        if same_object or child:
            out.append(name)
    return tuple(out)


def _child(table: str, parent: str) -> bool:
    """``table``'s rows are details of one ``parent`` row (its key holds the parent's key)."""
    return table != parent and any(c.pk and c.fk == parent for c in TABLES[table].columns)


def _custom_target(table: str, column: str) -> str | None:
    spec = OBJECTS[table]
    key = field_key(column) or "field"
    if spec.kind == "contact":
        return f"contact.source_{key}"
    if spec.kind == "opportunity":
        return f"opportunity.source_{key}"
    if spec.kind == "custom_object":
        return f"{spec.object_key}.source_{key}"
    return None


def _primary(mapping: Mapping, entry: Entry) -> str | None:
    return mapping.files.get(entry.file) or entry.table


@functools.cache
def family_options(table: str) -> tuple[TargetOption, ...]:
    """Every canonical column of ``table``'s family with the object map's target, type and PHI policy."""
    out = []
    for t in _family(table):
        for c in TABLES[t].columns:
            ft = target_for(t, c.name)
            where = f"{t}.{c.name}"
            out.append(TargetOption(f"col:{where}", ft.target, ft.type, ft.phi, f"{ft.target} ({where})", t,
                                    c.name, ft.label or None))
    return tuple(out)


def target_options(mapping: Mapping, entry: Entry) -> list[TargetOption]:
    """The valid targets of one entry: skip, its current target, every canonical column of its file's
    tables (with the object map's target, type and PHI policy) and a custom field to create."""
    out = [TargetOption("skip", "skip", entry.type if entry.target == "skip" else "TEXT", entry.phi,
                        "skip (not migrated)")]  # its PHI policy stays (an SSN skipped is still omitted)
    current = TargetOption("current", entry.target, entry.type, entry.phi, f"{entry.target} (proposed)",
                           entry.table, entry.column, entry.label)
    if entry.target != "skip":
        out.append(current)
    primary = _primary(mapping, entry)
    if primary is None:
        return out
    out += family_options(primary)
    if entry.table and entry.table not in _family(primary):
        out += [o for o in family_options(entry.table) if o.table == entry.table]
    custom = _custom_target(primary, entry.source_column)
    if custom is not None:
        out.append(TargetOption(f"new:{custom}", custom, "TEXT", "send", f"{custom} (new custom field)",
                                primary, None, entry.source_column, creates=True))
    return out


def _shared(mapping: Mapping, entry: Entry, o: TargetOption) -> bool:
    primary = _primary(mapping, entry)
    return o.id.startswith("col:") and primary is not None and o.table in _family(primary)


def _is_phi(entry: Entry) -> bool:
    """A row whose PHI policy wants a decision: encrypted or omitted, a direct identifier (a name, a birth
    date, a phone; not a key), free text (notes, alerts), or a column nothing matched (it may hold
    anything). Nearly every column of a dental export is PHI; these are the ones a policy is chosen for."""
    if entry.phi != "send" or entry.target == "skip":
        return entry.phi != "send"
    col = TABLES[entry.table].by_name.get(entry.column) if entry.table and entry.column else None
    if col is None:
        return True
    return (col.phi == "D" and not col.pk and col.fk is None) or col.kind == "memo"


def review_rows(mapping: Mapping, shapes: dict[str, ColumnShape],
                picks: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """Every entry as the page shows it, low-confidence rows first (a model's disagreement first among
    them), then PHI rows, then by confidence."""
    picks = picks or {}
    rows = []
    for e in mapping.fields:
        shape = shapes.get(e.source)
        low = e.confidence < LOW_CONFIDENCE
        phi = _is_phi(e)
        rows.append({
            "source": e.source, "file": e.file, "column": e.source_column, "table": e.table,
            "canonical": e.column, "target": e.target, "type": e.type, "confidence": e.confidence,
            "reasons": list(e.reasons), "phi": e.phi, "label": e.label, "values": dict(e.values or {}),
            "split": e.split, "low": low, "phi_row": phi, "skipped": e.target == "skip",
            # a model-backed proposal that contradicts the matcher (``merge``): both targets, named
            "disagree": next((r[len(DISAGREE):] for r in e.reasons if r.startswith(DISAGREE)), None),
            "shapes": [{"shape": s, "n": n} for s, n in shape.shapes] if shape else [],
            "distinct": shape.distinct if shape else None,
            "null_rate": round(shape.null_rate, 3) if shape else None,
            "describe": shape.describe() if shape else "(file not read)",
            "picks": picks.get(e.source, []),
            # the row's own options; the family's shared ones are listed once (``family_options``)
            "family": _primary(mapping, e),
            "options": [asdict(o) for o in target_options(mapping, e) if not _shared(mapping, e, o)],
        })
    rows.sort(key=lambda r: (not r["low"], r["disagree"] is None, not r["phi_row"], r["confidence"],
                             str(r["source"]).upper()))
    return rows


def _pick_column(mapping: Mapping, source: str) -> bool:
    for e in mapping.fields:
        if e.source == source and e.table and e.column and e.phi == "send":
            col = TABLES[e.table].by_name.get(e.column)
            if col is None or col.kind not in _PICK_KINDS:
                return False
            # a code column (a provider, an operatory) has no value map unless it lands in a pick-list
            return col.kind != "code" or e.type in ("SINGLE_OPTIONS", "MULTIPLE_OPTIONS")
    return False


def pick_values(mapping: Mapping, samples: Mapping_[str, Sequence[str]]) -> dict[str, list[str]]:
    """Distinct values of the columns a value map applies to, for the page's value-map editor.

    Only for entries whose canonical column is an enum, a lookup or a code landing in a pick-list
    (statuses, genders, procedure codes: the practice's configuration, not something a patient said or
    is), sent plain, and only when
    the sample looks like a code list: every value a short upper-case code, at most ``_MAX_PICKS`` of
    them, each repeated on average (a mis-matched name column fails these and shows nothing)."""
    out: dict[str, list[str]] = {}
    for source, cells in samples.items():
        if not _pick_column(mapping, source):
            continue
        vals = [c.strip() for c in cells if c and c.strip()]
        distinct = sorted(set(vals))
        if not distinct or len(distinct) > _MAX_PICKS or len(distinct) * 2 > len(vals) + 1:
            continue
        if all(_CODE.match(v) for v in distinct):
            out[source] = distinct
    return out


def read_export(source: str | Path, files: Iterable[str] | None = None
                ) -> tuple[dict[str, ColumnShape], dict[str, list[str]]]:
    """One pass over the export's sample: ``FILE.COLUMN`` -> its masked shape, and -> its sampled cells
    (in memory only, for ``pick_values``; never sent anywhere as is)."""
    shapes: dict[str, ColumnShape] = {}
    cells: dict[str, list[str]] = {}
    for key, got in export_samples(source, files):
        shapes[key] = column_shape(got)
        cells[key] = got
    return shapes, cells


class Edit(BaseModel):
    """One column's change as the page sends it; a field left out keeps the entry's value."""

    model_config = ConfigDict(extra="forbid")
    source: str
    option: str | None = None  # a TargetOption id
    type: str | None = None
    phi: str | None = None
    values: dict[str, str] | None = None
    split: str | None = None  # "" removes it


def _apply(mapping: Mapping, entry: Entry, edit: Edit) -> Entry:
    data = entry.model_dump()
    if edit.option is not None and edit.option != "current":
        opts = {o.id: o for o in target_options(mapping, entry)}
        opt = opts.get(edit.option)
        if opt is None:
            raise ReviewError(f"{entry.source}: {edit.option!r} is not a target this column may take")
        data.update(target=opt.target, type=opt.type, phi=opt.phi, label=opt.label)
        if opt.id != "skip":
            data.update(table=opt.table, column=opt.column)
            primary = _primary(mapping, entry)
            if data.get("split") is None and primary and opt.table and _child(opt.table, primary):
                data["split"] = LIST_SEPARATORS  # a detail table's column in a parent's row: a list
            data["values"] = (VALUE_LABELS.get((opt.table, opt.column)) if opt.table and opt.column
                              else None)
        data["reasons"] = [*entry.reasons, f"reviewed: target set to {opt.target}"]
        data["confidence"] = 1.0
    if edit.type is not None:
        if edit.type not in TYPES:
            raise ReviewError(f"{entry.source}: type {edit.type!r} is not one of {', '.join(TYPES)}")
        data["type"] = edit.type
    if edit.phi is not None:
        if edit.phi not in PHI_POLICIES:
            raise ReviewError(f"{entry.source}: PHI policy {edit.phi!r} is not send, encrypt or omit")
        data["phi"] = edit.phi
    if edit.values is not None:
        kept = {str(k): str(v).strip() for k, v in edit.values.items() if str(v).strip()}
        data["values"] = kept or None
    if edit.split is not None:
        data["split"] = edit.split or None
    return Entry.model_validate(data)


def apply_edits(mapping: Mapping, edits: Iterable[Edit | dict[str, Any]]) -> Mapping:
    """``mapping`` with the page's edits applied (unconfirmed: a changed map is confirmed again), or a
    ``ReviewError`` naming the first edit that cannot be applied (ids and targets only, no value)."""
    by_source = {e.source: i for i, e in enumerate(mapping.fields)}
    fields = list(mapping.fields)
    for raw in edits:
        try:
            edit = raw if isinstance(raw, Edit) else Edit.model_validate(raw)
        except ValidationError as exc:
            raise ReviewError(f"an edit is malformed: {exc.errors()[0]['msg']}") from None
        i = by_source.get(edit.source)
        if i is None:
            raise ReviewError(f"{edit.source!r}: no such column in the map")
        try:
            fields[i] = _apply(mapping, fields[i], edit)
        except ValidationError as exc:
            raise ReviewError(f"{edit.source}: {exc.errors()[0]['msg']}") from None
    try:
        return Mapping.model_validate({**mapping.model_dump(), "fields": [f.model_dump() for f in fields],
                                       "confirmed": None})
    except ValidationError as exc:
        raise ReviewError("; ".join(e["msg"] for e in exc.errors()[:3])) from None
