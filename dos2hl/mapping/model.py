"""``mapping.yaml``: the field map a person confirms before any record moves.

::

    version: 1
    export: {profile: reference, fingerprint: 3f1c...}   # which export layout it was proposed from
    files: {Patients: patient, Appts: appt, ...}           # source file stem -> canonical table
    fields:
      - source: Patients.PatLast          # FILE.COLUMN as in the export
        table: patient                    # canonical table and column the proposer matched
        column: lname
        target: contact.lastName
        type: STANDARD
        confidence: 0.97
        reasons: ["name 'PatLast' ~ lname (synonym 'last')"]
        phi: send                         # send | encrypt | omit
        values: {A: Active, I: Inactive}  # where values change (statuses -> stages, enums -> options)
      - source: Visits.Codes              # a list column: each item is a row of a child table
        table: apptproc
        column: proc_code
        split: ";, "                      # any of these characters separates the items
    confirmed: {by: Dr. Rivera, at: 2026-11-26T10:00:00Z, sha256: ..., entries: {...}}

A file may feed several tables: its entries name each column's own table (a coverage file whose rows
hold the patient's coverage, the subscriber, the plan and the carrier), and ``files`` names the file's
primary table (the one whose row each source row is). One table may come from several files (two
stems naming the same table), joined on the table's key column, which each of them maps.

``content_hash`` covers everything but ``confirmed`` (key order and comments do not matter), and
``confirmed.entries`` keeps one short digest per entry, so a changed file names what changed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..model import TABLES
from ..sources.profile import FileSpec, ListColumn, Profile, load_profile, parse_yaml

_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

__all__ = ["Confirmation", "Entry", "Mapping", "load_mapping", "require_confirmed", "save_mapping"]

Phi = Literal["send", "encrypt", "omit"]


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    source: str  # FILE.COLUMN (file stem as in the export)
    table: str | None = None
    column: str | None = None
    target: str
    type: str
    confidence: float = Field(ge=0, le=1)
    reasons: list[str] = []
    phi: Phi = "send"
    label: str | None = None  # display name of a custom field / object field
    values: dict[str, str] | None = None
    # a list column: the characters that separate its items; each item becomes one row of ``table``
    # (a child of the file's primary table, linked by the parent's key), ``column`` set to the item
    split: str | None = None

    @property
    def file(self) -> str:
        return self.source.rsplit(".", 1)[0]

    @property
    def source_column(self) -> str:
        return self.source.rsplit(".", 1)[1]

    def digest(self) -> str:
        return hashlib.sha256(_canon(self.model_dump(exclude=_later_unset(self)))).hexdigest()[:12]


class ExportInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")
    profile: str = "reference"  # the base layout (encoding, dates, quoting) the export follows
    fingerprint: str = ""  # sha256 over file names and header rows
    # where the export was when the map was proposed (folder or s3:// URI): provision reads its reference
    # tables for pick-list options and user-defined fields without a --source flag. A location hint, not
    # content: it is outside the confirmation hash (moving the export does not void a confirmation).
    source: str | None = None
    # a single-office export (no file carries a location column): the office code every row belongs to,
    # filled into loc_id / home_loc_id by the reader; locations.yaml maps it to a sub-account as usual
    location: str | None = None

    @field_validator("location")
    @classmethod
    def _code(cls, v: str | None) -> str | None:
        return v.strip().upper() or None if v else None  # a code, as the reader reads codes


class Confirmation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1)
    at: dt.datetime
    sha256: str
    entries: dict[str, str] = {}  # source -> entry digest at confirmation


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Literal[1] = 1
    export: ExportInfo = ExportInfo()
    files: dict[str, str] = {}  # source file stem -> canonical table
    fields: list[Entry] = []
    # how each custom object's records reach their contact: "association" (a relation per record, the
    # default) or "lookup_field" (the contact's id and Source_System_ID on the record, no relation call)
    relations: dict[str, Literal["association", "lookup_field"]] = {}
    confirmed: Confirmation | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Mapping:
        for stem, table in self.files.items():
            if table not in TABLES:
                raise ValueError(f"files.{stem}: unknown table {table!r}")
        seen: set[str] = set()
        for e in self.fields:
            if e.source in seen:
                raise ValueError(f"fields: {e.source} is listed twice")
            seen.add(e.source)
            if e.table is not None and e.table not in TABLES:
                raise ValueError(f"fields: {e.source}: unknown table {e.table!r}")
            if e.table is not None and e.column is not None and e.column not in TABLES[e.table].by_name:
                raise ValueError(f"fields: {e.source}: {e.table} has no column {e.column!r}")
            if e.split is not None and (not e.split or e.table is None or e.column is None):
                raise ValueError(f"fields: {e.source}: split needs separators, a table and a column")
        return self

    def content_hash(self) -> str:
        export_skip = {"source": True} | ({"location": True} if self.export.location is None else {})
        skip: dict[str, Any] = {"confirmed": True, "export": export_skip}
        later = {i: _later_unset(e) for i, e in enumerate(self.fields) if _later_unset(e)}
        if later:
            skip["fields"] = later
        if not self.relations:  # maps confirmed before it existed
            skip["relations"] = True
        return hashlib.sha256(_canon(self.model_dump(exclude=skip))).hexdigest()

    def entry(self, table: str, column: str) -> Entry | None:
        for e in self.fields:
            if e.table == table and e.column == column:
                return e
        return None

    def to_profile(self) -> Profile:
        """The export profile the reader needs: the base layout plus this map's file and column names.

        Every entry is honoured or refused: a column of the file's own table is a column; a column of
        another table is a derived row's (``FileSpec.derived``); a ``split`` entry is a list column
        (``FileSpec.lists``); a second stem of the same table is a part joined on the table's key
        (``FileSpec.parts``). An entry the reader cannot place is a ConfigError naming it.
        """
        base = load_profile(self.export.profile)
        specs: dict[str, FileSpec] = {}
        for e in self.fields:
            table = self.files.get(e.file)
            if table is None:
                if e.table is not None and e.column is not None:
                    raise ConfigError(f"fields: {e.source} maps to {e.table}.{e.column} but its file "
                                      f"{e.file!r} is not under files: name the file's table there")
                continue
            spec = specs.setdefault(e.file, FileSpec(file=e.file))
            if e.split is not None:
                assert e.table is not None and e.column is not None  # the model's validator
                if not any(c.fk == table for c in TABLES[e.table].columns):
                    raise ConfigError(f"fields: {e.source}: a list of {e.table}.{e.column} cannot be read "
                                      f"from a {table} file ({e.table} has no column referring to {table})")
                spec.lists[e.source_column] = ListColumn(table=e.table, column=e.column, split=e.split)
                spec.columns[e.source_column] = "skip"
            elif e.table is not None and e.column is not None and e.table != table:
                spec.derived.setdefault(e.table, {})[e.source_column] = e.column
                spec.columns[e.source_column] = "skip"
            else:
                spec.columns[e.source_column] = e.column if (e.table == table and e.column) else "skip"
        files: dict[str, FileSpec] = {}
        for stem, table in self.files.items():
            spec = specs.get(stem, FileSpec(file=stem))
            if table not in files:
                b = base.spec(table)
                files[table] = b.model_copy(update={"file": stem, "columns": {**b.columns, **spec.columns},
                                                    "derived": spec.derived, "lists": spec.lists,
                                                    "parts": {}})
                continue
            pk = TABLES[table].pk
            if not set(pk) <= set(spec.columns.values()):
                raise ConfigError(f"files: {stem} and {files[table].file} both hold {table}: each must map "
                                  f"its key ({', '.join(pk)}) so their rows can be joined")
            files[table].parts[stem] = spec
        data = base.model_dump()
        data.update(name=f"{base.name}+mapping", location=self.export.location or base.location,
                    files={t: s.model_dump() for t, s in {**base.files, **files}.items()})
        try:
            return Profile.model_validate(data)
        except ValueError as exc:
            raise ConfigError(f"the map cannot be read as an export profile: {exc}") from None

    def changes_since_confirmation(self) -> list[str]:
        """What differs from the confirmed content: entries changed, added, removed, or other parts."""
        assert self.confirmed is not None
        now = {e.source: e.digest() for e in self.fields}
        then = self.confirmed.entries
        out = [f"{s} changed" for s in sorted(now.keys() & then.keys()) if now[s] != then[s]]
        out += [f"{s} added" for s in sorted(now.keys() - then.keys())]
        out += [f"{s} removed" for s in sorted(then.keys() - now.keys())]
        if not out:
            out = ["the files, export or version section changed"]
        return out

    def confirm(self, by: str, at: dt.datetime | None = None) -> Mapping:
        at = at or dt.datetime.now(dt.timezone.utc)
        c = Confirmation(by=by, at=at, sha256=self.content_hash(),
                         entries={e.source: e.digest() for e in self.fields})
        return self.model_copy(update={"confirmed": c})


def _later_unset(e: Entry) -> set[str]:  # fields added later stay out of older maps' hashes
    return {"split"} if e.split is None else set()


def _canon(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()


HEADER = """\
# dos2hl field map. Review every entry: target, type, PHI policy and value maps.
# Entries with low confidence come first in each file. Then: dos2hl map confirm {path} --by "Your Name"
# Editing anything after confirmation voids it (every command that writes to HighLevel checks).
"""


def save_mapping(mapping: Mapping, path: str | Path) -> Path:
    p = Path(path)
    data = mapping.model_dump(mode="json", exclude_none=True)
    text = HEADER.format(path=p.name) + yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True,
                                                  width=110)
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(p)
    return p


def load_mapping(path: str | Path) -> Mapping:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{p}: no such mapping file; create one with: dos2hl map propose SOURCE --out {p}")
    try:
        return Mapping.model_validate(parse_yaml(p.read_text(encoding="utf-8")) or {})
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML ({exc.__class__.__name__})") from None
    except ValidationError as exc:
        where = "; ".join(f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
        raise ConfigError(f"{p}: {where}") from None


def require_confirmed(path: str | Path) -> Mapping:
    """The confirmed map, or a ConfigError saying what to do: every HighLevel write goes through here."""
    m = load_mapping(path)
    if m.confirmed is None:
        raise ConfigError(f"{path}: the map is not confirmed; review it, then run: "
                          f"dos2hl map confirm {path} --by \"Your Name\"")
    if m.content_hash() != m.confirmed.sha256:
        changed = m.changes_since_confirmation()
        more = f" (+{len(changed) - 8} more)" if len(changed) > 8 else ""
        raise ConfigError(f"{path}: changed after {m.confirmed.by} confirmed it at "
                          f"{m.confirmed.at.isoformat(timespec='seconds')}: {'; '.join(changed[:8])}{more}. "
                          f"Review and confirm again: dos2hl map confirm {path} --by \"Your Name\"")
    return m
