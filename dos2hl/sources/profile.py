"""Export profiles: how one practice's export files and columns map onto the canonical model.

A profile is a YAML file (``dos2hl/profiles/reference.yaml`` is the Dent-O-Soft reference layout).
Anything a profile leaves out follows the naming rule of ``dos2hl.model.tables``: the file of table
``patient`` is ``PATIENT.<ext>`` and column ``BIRTHDATE`` is canonical ``birthdate``. So a profile
only lists what differs: other file names, other column names, a file without a header row, wide
appointment procedure columns, or a different ledger amount convention.

Example (a practice whose export renames things)::

    name: northside
    date_order: MDY
    files:
      patient:
        file: Patients
        columns: {PatNum: pat_id, PatLast: lname, PatFirst: fname, BirthDt: birthdate}
      appt:
        wide_procedures: {count: 6, code: "PROC{n}", tooth: "TOOTH{n}", surf: "SURF{n}"}
    ledger_amount: {mode: split_columns, columns: [CASH_AMT, CHECK_AMT, CARD_AMT]}

Exports shaped differently (what a field map's ``to_profile`` writes, ``dos2hl.sources.shaped`` reads)::

    files:
      patins:                      # a coverage file: each row is a patient's coverage ...
        file: Coverage
        columns: {PatID: pat_id, Elig: elig_stat}
        derived:                   # ... and carries the carrier, plan and subscriber on every row
          insco: {Carrier: carrier_name, PayerID: payer_id}
          insplan: {GroupNo: group_no}
      appt:
        file: Visits
        lists:                     # a list column: each item is a child row
          Codes: {table: apptproc, column: proc_code, split: ";, "}
      patient:
        file: Demographics
        parts:                     # the same table's other columns in another file, joined on pat_id
          Contacts: {columns: {PatID: pat_id, Mobile: cphone}}
"""

from __future__ import annotations

import hashlib
import pickle
import threading
from collections import OrderedDict
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..errors import ConfigError
from ..model import TABLES

__all__ = ["BUILTIN_PROFILES", "FileSpec", "LedgerAmount", "ListColumn", "Profile", "WideProcedures",
           "is_field_map", "load_profile", "parse_yaml"]

BUILTIN_PROFILES = ("reference", "softdent_like")

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser (its constructor is still Python)
_PARSED_CAP = 16
_parsed: OrderedDict[bytes, bytes] = OrderedDict()  # sha256 of a YAML text -> what it parses to, pickled
_parsed_lock = threading.Lock()


def parse_yaml(text: str) -> Any:
    """``text`` parsed as safe YAML, each caller getting its own copy.

    A run reads its field map several times (the map gate, the export's profile, preparing, each flow
    step) and a 400-entry map takes ~40 ms to parse even with libyaml, against ~1 ms to unpickle what it
    parsed to: a text seen before in this process (same bytes, by its sha256, so an edited file is parsed
    again) is unpickled instead. The last ``_PARSED_CAP`` texts are kept. Raises ``yaml.YAMLError``."""
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    with _parsed_lock:
        blob = _parsed.get(key)
        if blob is not None:
            _parsed.move_to_end(key)
    if blob is not None:
        return pickle.loads(blob)  # noqa: S301 - our own pickle of a safe-YAML value, never from outside
    data = yaml.load(text, Loader=_LOADER)
    blob = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
    with _parsed_lock:
        _parsed[key] = blob
        while len(_parsed) > _PARSED_CAP:
            _parsed.popitem(last=False)
    return data


class WideProcedures(BaseModel):
    """APPT rows that carry their procedures in numbered columns (SoftDent style)."""

    model_config = ConfigDict(extra="forbid")
    count: int = Field(6, ge=1, le=20)
    code: str = "PROC{n}"
    tooth: str = "TOOTH{n}"
    surf: str = "SURF{n}"


class LedgerAmount(BaseModel):
    """How LEDGER carries the signed amount."""

    model_config = ConfigDict(extra="forbid")
    mode: Literal["signed", "drcr", "split_columns"] = "signed"
    drcr_column: str = "DRCR"  # mode drcr: D = debit (+), C = credit (-)
    columns: list[str] = ["CASH_AMT", "CHECK_AMT", "CARD_AMT"]  # mode split_columns: credits, summed


class ListColumn(BaseModel):
    """A source column holding a list: each item is one row of ``table`` (a child of the file's table)."""

    model_config = ConfigDict(extra="forbid")
    table: str
    column: str
    split: str = Field(min_length=1)  # any of these characters separates the items


class FileSpec(BaseModel):
    """One canonical table's file in this export."""

    model_config = ConfigDict(extra="forbid")
    file: str | None = None  # file stem; default: the table name upper-cased
    extensions: list[str] = [".CSV", ".TXT", ".REP"]
    columns: dict[str, str] = {}  # source column -> canonical column, where they differ
    header: list[str] | None = None  # source column names, for a file without a header row
    wide_procedures: WideProcedures | None = None  # appt only
    length_units_minutes: int | None = None  # appt: LENGTH is in units of N minutes (column UNITS)
    # a denormalised file: other tables' columns on each row (table -> {source column -> its column})
    derived: dict[str, dict[str, str]] = {}
    lists: dict[str, ListColumn] = {}  # source column -> the child rows its items become
    # the same table's rows continued in other files (stem -> that file's spec), joined on the table's key
    parts: dict[str, FileSpec] = {}

    def consumed(self) -> set[str]:
        """Upper-cased source columns that feed another table (derived or list columns)."""
        return {c.upper() for cols in self.derived.values() for c in cols} | {c.upper() for c in self.lists}


class Profile(BaseModel):
    """A whole export profile."""

    model_config = ConfigDict(extra="forbid")
    name: str
    description: str = ""
    date_order: Literal["MDY", "DMY"] = "MDY"
    decimal_comma: bool = False
    phone_region: str = "US"
    encoding: str | None = None  # force a code page (e.g. cp1253 for a Greek build); a BOM still wins
    quotechar: str | None = None  # force the quote character when the sample may show none (~ exports)
    files: dict[str, FileSpec] = {}
    # a single-office export: the location code of every row whose file has no location column
    location: str | None = None
    ledger_amount: LedgerAmount = LedgerAmount()

    @field_validator("location")
    @classmethod
    def _location_code(cls, v: str | None) -> str | None:
        code = v.strip().upper() if v else None  # a code column's form (``l001`` -> ``L001``)
        return code or None

    @model_validator(mode="after")
    def _known_tables_and_columns(self) -> Profile:
        for tname, spec in self.files.items():
            if tname not in TABLES:
                raise ValueError(f"profile {self.name!r}: unknown table {tname!r}; valid: "
                                 f"{', '.join(TABLES)}")
            known = TABLES[tname].by_name
            for src, canon in spec.columns.items():
                if canon not in known and canon != "skip":
                    raise ValueError(
                        f"profile {self.name!r}: {tname}.{src} maps to unknown column {canon!r}; "
                        f"valid: {', '.join(known)} or 'skip'"
                    )
            if spec.wide_procedures is not None and tname != "appt":
                raise ValueError(f"profile {self.name!r}: wide_procedures only applies to appt, not {tname}")
            for part in [spec, *spec.parts.values()]:
                _check_shapes(self.name, tname, part)
        return self

    def spec(self, table: str) -> FileSpec:
        return self.files.get(table) or FileSpec()

    def spec_for(self, table: str, stem: str) -> FileSpec:
        """The spec of one file of ``table``: a part's own spec when ``stem`` names a part."""
        spec = self.spec(table)
        for part_stem, part in spec.parts.items():
            if part_stem.upper() == stem.upper():
                return part
        return spec

    def file_stem(self, table: str) -> str:
        return self.spec(table).file or table.upper()

    def canonical_column(self, table: str, source_column: str, stem: str | None = None) -> str | None:
        """The canonical column a source column feeds, or None when it is unknown to this profile
        (``stem``: the file's stem, for a table whose rows continue in other files)."""
        spec = self.spec(table) if stem is None else self.spec_for(table, stem)
        key = source_column.strip()
        if key in spec.columns:
            mapped = spec.columns[key]
            return None if mapped == "skip" else mapped
        upper = {k.upper(): v for k, v in spec.columns.items()}
        if key.upper() in upper:
            mapped = upper[key.upper()]
            return None if mapped == "skip" else mapped
        low = key.lower()
        return low if low in TABLES[table].by_name else None

    def source_column(self, table: str, canonical: str) -> str:
        """The source column name this profile writes for a canonical column (the generator's view)."""
        for src, canon in self.spec(table).columns.items():
            if canon == canonical:
                return src
        return canonical.upper()

    @cached_property
    def stems(self) -> dict[str, str]:
        """Upper-cased file stem -> canonical table."""
        out = {self.file_stem(t).upper(): t for t in TABLES}
        for t, spec in self.files.items():
            out.update({stem.upper(): t for stem in spec.parts})
        return out

    def feeds(self, table: str) -> list[str]:
        """The tables the files of ``table`` feed: itself, derived tables, list children (parents first)."""
        out = {table}
        spec = self.spec(table)
        for s in [spec, *spec.parts.values()]:
            out |= set(s.derived) | {lc.table for lc in s.lists.values()}
            if s.wide_procedures is not None:
                out.add("apptproc")
        return [t for t in TABLES if t in out]


def _check_shapes(name: str, table: str, spec: FileSpec) -> None:
    for other, cols in spec.derived.items():
        if other not in TABLES or other == table:
            raise ValueError(f"profile {name!r}: {table} derives unknown table {other!r}")
        bad = [c for c in cols.values() if c not in TABLES[other].by_name]
        if bad:
            raise ValueError(f"profile {name!r}: {table} derives {other} columns it does not have: {bad}")
    for src, lc in spec.lists.items():
        if lc.table not in TABLES or lc.column not in TABLES[lc.table].by_name:
            raise ValueError(f"profile {name!r}: list column {table}.{src}: unknown {lc.table}.{lc.column}")
        if not any(c.fk == table for c in TABLES[lc.table].columns):
            raise ValueError(f"profile {name!r}: list column {table}.{src}: {lc.table} has no column "
                             f"referring to {table} (its items cannot be linked to their row)")


def load_profile(name_or_path: str | Path | Profile) -> Profile:
    """Load a built-in profile by name (``reference``) or a profile YAML file by path (a field map's
    profile is ``dos2hl.api.export_profile``'s: the map lives above the sources)."""
    if isinstance(name_or_path, Profile):
        return name_or_path
    text: str
    p = Path(name_or_path)
    if str(name_or_path) in BUILTIN_PROFILES:
        text = resources.files("dos2hl.profiles").joinpath(f"{name_or_path}.yaml").read_text("utf-8")
        origin = f"built-in profile {name_or_path}"
    elif p.is_file():
        text = p.read_text("utf-8")
        origin = str(p)
    else:
        raise ConfigError(
            f"export profile {str(name_or_path)!r} not found: give a YAML file path or one of "
            f"{', '.join(BUILTIN_PROFILES)}"
        )
    try:
        data = parse_yaml(text) or {}
        if is_field_map(data):
            raise ConfigError(f"{origin} is a field map, not an export profile: open it with "
                              "dos2hl.api.export_profile (its file and column names over its base profile)")
        return Profile.model_validate(data)
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{origin} is not a valid export profile: {exc}") from exc


def is_field_map(data: object) -> bool:
    """A parsed YAML document that is a field map (``mapping.yaml``), not an export profile."""
    return isinstance(data, dict) and "fields" in data and "name" not in data
