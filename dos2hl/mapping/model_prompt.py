"""What the model-backed proposer asks, and how its answer is checked.

The prompt carries file names, column names, masked value shapes (``shapes.ColumnShape.describe()``:
``Aa… (6) 80%, (empty) 20%; 143 distinct, 20% empty``), the offline matcher's proposal per column, and
the canonical tables and columns with their kinds. It never carries a cell of the export: shapes mask
every letter and digit, and a header-less file's columns are named ``COLUMN1``... by the reader.

The answer is one JSON object ``{"files": {FILE: table | null}, "columns": {"FILE.COLUMN": {"table": t,
"column": c, "split": s?} | null}}``, validated against ``dos2hl.model.TABLES`` column by column: one
unknown target rejects that column's answer, not the others'.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ..model import TABLES
from .model import Mapping
from .shapes import ColumnShape

__all__ = ["Answer", "ColumnAnswer", "FileBlock", "SYSTEM", "batches", "catalog", "file_blocks",
           "messages", "parse_answer", "value_like"]

SYSTEM = """\
You map the columns of a dental practice-management export onto a canonical schema.
You see file names, column names and masked value shapes (A/a = letters, # = digits, never real values),
and what an offline name matcher proposed. A file has a primary table (each of its rows is a row of it);
its columns may also hold columns of other tables (a coverage file may carry the carrier's name and the
plan's group number). A column holding a list (codes separated by ';', ',' or spaces) maps to a child
table's column with "split" set to the separator characters.
Answer with one JSON object and nothing else:
{"files": {"FILE": "table" or null}, "columns": {"FILE.COLUMN": {"table": "t", "column": "c"} or
{"table": "t", "column": "c", "split": ";"} or null}}
Use only tables and columns of the canonical schema below; null means no canonical column fits.
Answer for every file and every column you are given."""


#: below this confidence the prompt also shows the matcher's runners-up (the review threshold)
UNSURE = 0.8


@dataclass(frozen=True)
class FileBlock:
    """The prompt's lines about one file; ``asked``: each column as the prompt names it -> its source."""

    stem: str
    text: str
    asked: dict[str, str]

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(self.asked.values())


_VALUE_LIKE = re.compile(r"@|\d{4}|^[\d\s.,/:$()+\-#]*\d[\d\s.,/:$()+\-#]*$")


def value_like(name: str) -> bool:
    """A column name that may be a cell (an e-mail, a 4-digit run such as a year, a phone or an id, a
    number or date, more than five words, or over 40 characters): a file without a header whose first
    row was read as one. When one name of a file is, every column of the file is sent as ``COLUMN<n>``
    (its position): the row's other cells (a surname) cannot be told from a header's words."""
    return bool(_VALUE_LIKE.search(name)) or len(name.split()) > 5 or len(name) > 40


def catalog() -> str:
    """The canonical schema, one table a line: ``patient (Patients): pat_id int, lname str, ...``; a
    foreign key names its table (``guar_id int->patient``), so a file holding several tables reads as
    linked rows."""
    return "\n".join(f"{t.name} ({t.title}): " + ", ".join(
        f"{c.name} {c.kind}" + (f"->{c.fk}" if c.fk else "") for c in t.columns) for t in TABLES.values())


def _proposal(table: str | None, column: str | None, target: str, conf: float) -> str:
    if table and column:
        return f"{table}.{column} {conf:.2f}"
    return f"none ({target})"


def file_blocks(mapping: Mapping, shapes: dict[str, ColumnShape], max_chars: int,
                alternatives: dict[str, tuple[tuple[str, float], ...]] | None = None) -> list[FileBlock]:
    """One block per file of the map (a file longer than ``max_chars`` is cut into several blocks);
    a column below ``UNSURE`` also shows the matcher's runners-up from ``alternatives``."""
    alternatives = alternatives or {}
    by_file: dict[str, list[str]] = {}
    for e in mapping.fields:
        by_file.setdefault(e.file, []).append(e.source)
    entries = {e.source: e for e in mapping.fields}
    out: list[FileBlock] = []
    for stem in sorted(by_file, key=str.upper):
        head = f"FILE {stem} (matcher: {mapping.files.get(stem) or 'none'})"
        lines: list[str] = []
        asked: dict[str, str] = {}
        hide = any(value_like(entries[src].source_column) for src in by_file[stem])
        for i, src in enumerate(by_file[stem]):
            e = entries[src]
            shown = f"{stem}.COLUMN{i + 1}" if hide else src
            shape = shapes[src].describe() if src in shapes else "(no sample)"
            line = f"- {shown} | {shape} | matcher: {_proposal(e.table, e.column, e.target, e.confidence)}"
            if e.confidence < UNSURE and alternatives.get(src):
                line += "; also " + ", ".join(f"{tc} {s:.2f}" for tc, s in alternatives[src])
            if lines and len(head) + sum(len(x) + 1 for x in lines) + len(line) > max_chars:
                out.append(FileBlock(stem, "\n".join([head, *lines]), asked))
                lines, asked = [], {}
            lines.append(line)
            asked[shown] = src
        out.append(FileBlock(stem, "\n".join([head, *lines]), asked))
    return out


def batches(blocks: list[FileBlock], max_chars: int) -> list[list[FileBlock]]:
    """Consecutive blocks packed into requests of at most ``max_chars`` of file text each (blocks are
    joined by a blank line: ``messages``)."""
    out: list[list[FileBlock]] = []
    size = 0
    for b in blocks:
        if out and size + 2 + len(b.text) <= max_chars:
            out[-1].append(b)
            size += 2 + len(b.text)
        else:
            out.append([b])
            size = len(b.text)
    return out


def messages(batch: list[FileBlock]) -> list[dict[str, str]]:
    """The chat messages of one request: the instructions, the schema, the files."""
    files = "\n\n".join(b.text for b in batch)
    return [{"role": "system", "content": f"{SYSTEM}\n\nCanonical schema:\n{catalog()}"},
            {"role": "user", "content": f"Map these columns:\n\n{files}"}]


class ColumnAnswer(BaseModel):
    model_config = ConfigDict(extra="ignore")
    table: str
    column: str
    split: str | None = None


class Answer(BaseModel):
    """One request's validated answer: valid targets, and the columns whose answer was rejected."""

    model_config = ConfigDict(extra="ignore")
    files: dict[str, str | None] = {}
    columns: dict[str, ColumnAnswer | None] = {}
    rejected: dict[str, str] = {}  # source -> why its answer was not used (no content)


def _column(raw: Any) -> tuple[ColumnAnswer | None, str | None]:
    if raw is None:
        return None, None
    if isinstance(raw, str) and raw.count(".") == 1:  # "patient.zip": what a smaller model may write
        raw = dict(zip(("table", "column"), raw.split("."), strict=True))
    try:
        ans = ColumnAnswer.model_validate(raw)
    except ValidationError:
        return None, "model answer rejected: not {table, column}"
    spec = TABLES.get(ans.table)
    if spec is None or ans.column not in spec.by_name:
        return None, "model answer rejected: unknown target"
    if ans.split is not None and (not ans.split or ans.split.strip(" ;,|/\t") or len(ans.split) > 4):
        return None, "model answer rejected: split is not a few separator characters"
    return ans, None


def parse_answer(text: str, asked: dict[str, str], stems: tuple[str, ...]) -> Answer:
    """Validate the model's text against the schema; raises ValueError when it is no answer at all.

    ``asked``: each column as the prompt named it -> its source. Only the asked files and columns are
    kept (anything else the model wrote is ignored); answers are keyed by source."""
    try:
        doc = json.loads(text)
    except ValueError:
        raise ValueError("invalid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("columns"), dict):
        raise ValueError("not the expected JSON object")
    files_raw: dict[str, Any] = doc["files"] if isinstance(doc.get("files"), dict) else {}
    out = Answer()
    for stem in stems:
        t = files_raw.get(stem)
        if isinstance(t, str) and t in TABLES:
            out.files[stem] = t
        elif stem in files_raw and t is None:
            out.files[stem] = None
    cols = doc["columns"]
    for shown, src in asked.items():
        if shown not in cols:
            continue
        ans, why = _column(cols[shown])
        if why:
            out.rejected[src] = why
        else:
            out.columns[src] = ans
    return out
