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
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..errors import ConfigError
from ..model import TABLES

__all__ = ["BUILTIN_PROFILES", "FileSpec", "LedgerAmount", "Profile", "WideProcedures", "is_field_map",
           "load_profile"]

BUILTIN_PROFILES = ("reference", "softdent_like")


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


class FileSpec(BaseModel):
    """One canonical table's file in this export."""

    model_config = ConfigDict(extra="forbid")
    file: str | None = None  # file stem; default: the table name upper-cased
    extensions: list[str] = [".CSV", ".TXT", ".REP"]
    columns: dict[str, str] = {}  # source column -> canonical column, where they differ
    header: list[str] | None = None  # source column names, for a file without a header row
    wide_procedures: WideProcedures | None = None  # appt only
    length_units_minutes: int | None = None  # appt: LENGTH is in units of N minutes (column UNITS)


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
    ledger_amount: LedgerAmount = LedgerAmount()

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
        return self

    def spec(self, table: str) -> FileSpec:
        return self.files.get(table) or FileSpec()

    def file_stem(self, table: str) -> str:
        return self.spec(table).file or table.upper()

    def canonical_column(self, table: str, source_column: str) -> str | None:
        """The canonical column a source column feeds, or None when it is unknown to this profile."""
        spec = self.spec(table)
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
        return {self.file_stem(t).upper(): t for t in TABLES}


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
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
        if is_field_map(data):
            raise ConfigError(f"{origin} is a field map, not an export profile: open it with "
                              "dos2hl.api.export_profile (its file and column names over its base profile)")
        return Profile.model_validate(data)
    except (yaml.YAMLError, ValueError) as exc:
        raise ConfigError(f"{origin} is not a valid export profile: {exc}") from exc


def is_field_map(data: object) -> bool:
    """A parsed YAML document that is a field map (``mapping.yaml``), not an export profile."""
    return isinstance(data, dict) and "fields" in data and "name" not in data
