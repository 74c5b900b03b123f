"""Vendor styles: a generated reference export re-written the way other practice systems shape theirs,
with the ground truth to score ``dos2hl map propose`` against (``bench/propose.py``).

A style names its files and columns its own way (PascalCase, snake_case, UPPER abbreviations, Title
Case with spaces) and shapes them: a denormalised coverage file (each patient-coverage row carries its
subscriber, plan and carrier columns), appointments with their procedure codes in one list column
(``;``, ``,`` or space separated), the patient table split over two files sharing the patient id, and
vendor-only columns that match nothing. Only names and shapes change; the values are the reference
export's own cells. The styles are written from how such exports are labelled, not from the matcher's
synonym lists (this module does not import ``dos2hl.mapping``), so the accuracy measured is honest.

Style spec lines (one per file and column)::

    file patins = Coverage.csv          # the file's primary table (each row is one of its rows) = name
    patins.pat_id = PatientId           # a column of the primary table
    insco.carrier_name = CarrierName    # a column of a parent table, reached by foreign keys
    apptproc.proc_code[; ] = Codes      # a list column: the child rows' values joined by the separator
    + flag = PortalActive               # a vendor-only column (flag | date | int | text values)
"""

from __future__ import annotations

import csv
import random
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from ..model import TABLES
from .vendor_specs import SPECS

__all__ = ["STYLES", "FileTruth", "Style", "truth_json", "write_style"]

_LINE = re.compile(r"^(?P<t>\w+)\.(?P<c>\w+)(?:\[(?P<sep>[^\]]+)\])?\s*=\s*(?P<h>.+)$")
_EXTRA = re.compile(r"^\+\s*(?P<kind>flag|date|int|text)\s*=\s*(?P<h>.+)$")


@dataclass(frozen=True)
class FileTruth:
    """What one written file is: its primary table, each column's canonical (table, column) or None
    (vendor-only), and the list columns' separators."""

    primary: str
    columns: dict[str, tuple[str, str] | None]
    splits: dict[str, str] = field(default_factory=dict)

    @property
    def tables(self) -> frozenset[str]:
        return frozenset({self.primary, *(tc[0] for tc in self.columns.values() if tc)})


@dataclass(frozen=True)
class _Col:
    header: str
    table: str | None = None
    column: str | None = None
    sep: str | None = None
    kind: str | None = None  # vendor-only column's value kind


@dataclass(frozen=True)
class _File:
    name: str
    primary: str
    columns: tuple[_Col, ...]


@dataclass(frozen=True)
class Style:
    """One vendor's export: its files (parsed from the spec), delimiter and whether it is the holdout."""

    name: str
    spec: str
    delimiter: str = ","
    holdout: bool = False

    @property
    def files(self) -> tuple[_File, ...]:
        out: list[_File] = []
        for raw in self.spec.strip().splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith("file "):
                primary, _, name = line[5:].partition("=")
                out.append(_File(name.strip(), primary.strip(), ()))
                continue
            m, e = _LINE.match(line), _EXTRA.match(line)
            if m:
                col = _Col(m["h"].strip(), m["t"], m["c"], m["sep"])
                assert m["c"] in TABLES[m["t"]].by_name, f"{self.name}: {m['t']}.{m['c']}"
            elif e:
                col = _Col(e["h"].strip(), kind=e["kind"])
            else:
                raise ValueError(f"{self.name}: cannot read spec line {line!r}")
            out[-1] = _File(out[-1].name, out[-1].primary, (*out[-1].columns, col))
        return tuple(out)


def _read(export: Path, table: str) -> list[dict[str, str]]:
    with (export / f"{table.upper()}.CSV").open(encoding="cp1252", newline="") as fh:
        return [{k.lower(): v for k, v in row.items()} for row in csv.DictReader(fh)]


class _Rows:
    """The reference tables, read once, with lookups along foreign keys."""

    def __init__(self, export: Path) -> None:
        self.export = export
        self._tables: dict[str, list[dict[str, str]]] = {}
        self._index: dict[str, dict[str, dict[str, str]]] = {}
        self._children: dict[tuple[str, str], dict[str, list[dict[str, str]]]] = {}

    def rows(self, table: str) -> list[dict[str, str]]:
        if table not in self._tables:
            self._tables[table] = _read(self.export, table)
        return self._tables[table]

    def by_key(self, table: str) -> dict[str, dict[str, str]]:
        if table not in self._index:
            (pk,) = TABLES[table].pk
            self._index[table] = {r[pk]: r for r in self.rows(table)}
        return self._index[table]

    def parent(self, row: dict[str, str], table: str, target: str, depth: int = 3) -> dict[str, str] | None:
        """The ``target`` row ``row`` (of ``table``) reaches through its foreign keys, if any."""
        if table == target:
            return row
        if depth == 0:
            return None
        for col in TABLES[table].columns:
            if col.fk and col.fk != table and row.get(col.name):
                up = self.by_key(col.fk).get(row[col.name])
                found = self.parent(up, col.fk, target, depth - 1) if up else None
                if found is not None:
                    return found
        return None

    def children(self, row: dict[str, str], table: str, child: str) -> list[dict[str, str]]:
        (pk,) = TABLES[table].pk
        fk = next(c.name for c in TABLES[child].columns if c.fk == table)
        if (child, fk) not in self._children:
            groups: dict[str, list[dict[str, str]]] = {}
            for r in self.rows(child):
                groups.setdefault(r[fk], []).append(r)
            self._children[(child, fk)] = groups
        return self._children[(child, fk)].get(row[pk], [])


def _extra(kind: str, rng: random.Random) -> str:
    if kind == "flag":
        return rng.choice(("Y", "N", "N"))
    if kind == "date":
        if rng.random() < 0.2:
            return ""
        return f"{rng.randint(1, 12):02d}/{rng.randint(1, 28):02d}/20{rng.randint(15, 25)}"
    if kind == "int":
        return str(rng.randint(1, 9999))
    return rng.choice(("English", "Spanish", "Portuguese", "Vietnamese", ""))


def _cell(rows: _Rows, row: dict[str, str], f: _File, c: _Col, rng: random.Random) -> str:
    if c.kind:
        return _extra(c.kind, rng)
    assert c.table and c.column
    if c.sep is not None:
        kids = sorted(rows.children(row, f.primary, c.table), key=lambda r: int(r.get("seq") or 0))
        return c.sep.join(k[c.column] for k in kids if k[c.column])
    src = rows.parent(row, f.primary, c.table)
    return src.get(c.column, "") if src else ""


def write_style(export: Path, dst: Path, style: Style) -> dict[str, FileTruth]:
    """Write ``export`` (reference layout) shaped as ``style`` into ``dst``; return each file's truth."""
    dst.mkdir(parents=True, exist_ok=True)
    rows = _Rows(export)
    truth: dict[str, FileTruth] = {}
    for f in style.files:
        rng = random.Random(zlib.crc32(f"{style.name}:{f.name}".encode()))
        headers = [c.header for c in f.columns]
        assert len(set(headers)) == len(headers), f"{style.name}: duplicate headers in {f.name}"
        with (dst / f.name).open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, delimiter=style.delimiter, lineterminator="\r\n")
            w.writerow(headers)
            for row in rows.rows(f.primary):
                w.writerow([_cell(rows, row, f, c, rng) for c in f.columns])
        truth[f.name] = FileTruth(
            f.primary,
            {c.header: (c.table, c.column) if c.table and c.column else None for c in f.columns},
            {c.header: c.sep for c in f.columns if c.sep is not None})
    return truth


def truth_json(truth: dict[str, FileTruth]) -> dict[str, object]:
    """A style's ground truth as JSON: per file its primary table, tables, columns and list columns."""
    return {name: {"primary": ft.primary, "tables": sorted(ft.tables),
                   "columns": {h: f"{tc[0]}.{tc[1]}" if tc else None for h, tc in ft.columns.items()},
                   "splits": ft.splits} for name, ft in truth.items()}


STYLES: dict[str, Style] = {name: Style(name, spec, delimiter, holdout)
                            for name, (spec, delimiter, holdout) in SPECS.items()}
