"""Offline schema matcher behind ``dos2hl map propose``: which canonical table and column is each
file and column of an export whose names differ from the reference layout.

Why this shape:

- Names carry most of the signal, but vendors abbreviate and glue words (``PatLast``, ``BirthDt``,
  ``lastname``), so names are split into tokens, glued words are segmented against the vocabulary,
  and every token is normalised through ``synonyms.TOKEN_SYNONYMS`` before two names are compared
  (``names.py``).
- Names alone cannot tell ``Phone1`` from ``Date1``; a sample of rows is profiled (share of cells that
  look like e-mails, phones, dates, money, Y/N ...) and the profile is checked against the canonical
  column's kind. Row values are only counted in memory: reasons name columns, kinds and percentages,
  never a value (PHI rule).
- A file is the table whose name it resembles *and* whose columns its header covers, so a file named
  oddly but holding patient columns is still the patient table.
- Each canonical column is used at most once per file (greedy by score, deterministic tie-break).

Everything is deterministic and offline (stdlib ``difflib``, no model, no network).
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..model import TABLES, Column
from ..sources.detect import SAMPLE_BYTES, is_trailer, sniff
from . import synonyms as syn
from .names import name_similarity, normalize, tokenize
from .shaped import find_list_column, linked_tables, split_reason
from .values import KIND_WORDS, ValueProfile, kind_fit, profile_values

__all__ = ["ColumnMatch", "FileMatch", "match_export", "match_columns", "tokenize", "normalize",
           "ValueProfile", "profile_values", "name_similarity"]

#: below this combined score a column is left unmatched
MIN_COLUMN_SCORE = 0.5
#: below this a file is not given a table
MIN_TABLE_SCORE = 0.3
#: a synonym match counts slightly less than the canonical name itself
SYNONYM_WEIGHT = 0.97
#: a match found only after dropping the table's prefix words (``PatLast`` -> last) counts a bit less
STRIPPED_WEIGHT = 0.95
#: a linked table's column (a denormalised file) counts less than the file's own table's, and its
#: name must match well on its own (below LINK_MIN it is not a candidate)
LINK_WEIGHT = 0.9
LINK_MIN = 0.75
SAMPLE_ROWS = 200
_READ_BYTES = 4 * SAMPLE_BYTES
_SKIP_SUFFIXES = {".json", ".yaml", ".yml", ".md", ".txt~", ".log", ".jpg", ".jpeg", ".png", ".pdf", ".tif",
                  ".tiff", ".bmp", ".dcm", ".zip", ".gz"}


@dataclass(frozen=True)
class ColumnMatch:
    """The proposal for one source column (``column`` None: nothing fits well enough)."""

    source: str
    column: str | None
    confidence: float
    reasons: tuple[str, ...]
    alternatives: tuple[tuple[str, float], ...] = ()
    table: str | None = None  # a linked table's column (denormalised file); None: the file's own table
    split: str | None = None  # a list column: its item separators (each item a row of ``table``)


@dataclass(frozen=True)
class FileMatch:
    """The proposal for one source file and its columns."""

    file: str
    table: str | None
    confidence: float
    reasons: tuple[str, ...]
    columns: tuple[ColumnMatch, ...]


# ---- the canonical side --------------------------------------------------------------------------
@dataclass(frozen=True)
class _Phrase:
    column: str
    text: str
    tokens: tuple[str, ...]


@lru_cache(maxsize=64)
def _phrases(table: str) -> tuple[_Phrase, ...]:
    """Every phrase naming a column of ``table``: its canonical name, then its synonyms."""
    out: list[_Phrase] = []
    extra = syn.TABLE_COLUMN_SYNONYMS.get(table, {})
    for col in TABLES[table].columns:
        texts = [col.name, *syn.COLUMN_SYNONYMS.get(col.name, ()), *extra.get(col.name, ())]
        seen: set[tuple[str, ...]] = set()
        for text in texts:
            for toks in (normalize(text), normalize(text, glue=False)):  # Post Code: zip, and post code
                if toks and toks not in seen:
                    seen.add(toks)
                    out.append(_Phrase(col.name, text, toks))
    return tuple(out)


@lru_cache(maxsize=64)
def _table_phrases(table: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    texts = [table, TABLES[table].title, *syn.TABLE_SYNONYMS.get(table, ())]
    return tuple((t, normalize(t)) for t in texts)


def _variants(source: str, table: str) -> tuple[tuple[str, ...], ...]:
    """The normalised source name, and without the table's prefix words (``PatLast`` -> last)."""
    toks = normalize(source)
    ctx = set(syn.TABLE_CONTEXT.get(table, ()))
    stripped = tuple(t for t in toks if t not in ctx)
    out = (toks, stripped) if stripped and stripped != toks else (toks,)
    apart = normalize(source, glue=False)  # two words read as one known word, and as two
    return out if apart == toks else (*out, apart)


def _name_scores(source: str, table: str, fuzzy: bool = True) -> dict[str, tuple[float, str]]:
    """Best name score per canonical column of ``table`` and the phrase that gave it (``fuzzy``
    False: token overlap only, cheap enough to try every table for every file)."""
    best: dict[str, tuple[float, str]] = {}
    variants = _variants(source, table)
    for ph in _phrases(table):
        s = max(_cached_sim(v, ph.tokens,
                            fuzzy) * (1.0 if i == 0 else STRIPPED_WEIGHT) for i, v in enumerate(variants))
        if ph.text != ph.column:
            s *= SYNONYM_WEIGHT  # the canonical name wins a tie (IS_HYG: is_hyg, not def_hyg_id 'hygienist')
        if s > best.get(ph.column, (-1.0, ""))[0]:
            best[ph.column] = (s, ph.text)
    return best


@lru_cache(maxsize=200000)
def _cached_sim(a: tuple[str, ...], b: tuple[str, ...], fuzzy: bool = True) -> float:
    return name_similarity(a, b, fuzzy)


# ---- columns -------------------------------------------------------------------------------------
_WIDE = re.compile(r"^(proc|code|tooth|surf|surface)[_ ]?[1-9]$", re.I)


def _combine(name: float, fit: float | None) -> float:
    """Name dominates; the value fit scales it (an empty sample is judged by name alone)."""
    return name * (0.92 if fit is None else 0.75 + 0.25 * fit)


_Row = tuple[float, str, str, float, str, float | None]  # score, table, column, name score, phrase, fit


def _score_rows(table: str, h: str, prof: ValueProfile | None, weight: float = 1.0,
                floor: float = 0.0) -> list[_Row]:
    names = _name_scores(h, table)
    rows: list[_Row] = []
    for column in TABLES[table].columns:
        nscore, phrase = names.get(column.name, (0.0, ""))
        if nscore <= 0 or nscore < floor or (floor and column.pk):
            continue
        fit = kind_fit(prof, column) if prof is not None else None
        rows.append((weight * _combine(nscore, fit), table, column.name, nscore, phrase, fit))
    return rows


def match_columns(table: str, headers: Sequence[str], samples: Mapping[str, Sequence[str]] | None = None,
                  *, linked: bool = False, own_files: Collection[str] = ()) -> tuple[ColumnMatch, ...]:
    """Propose a canonical column of ``table`` for every header, one-to-one, in header order.

    ``linked``: the file may be denormalised: a header may also be a list column of a child table
    (procedure codes of an appointment) or a column of a table ``table`` reaches by its foreign keys
    (the carrier's name on a coverage row), each matched only when it fits well. A linked table in
    ``own_files`` (it has a file of its own) is not a candidate, nor is a linked table's key (the file's
    own foreign-key column holds it)."""
    spec = TABLES[table]
    profiles = {h: profile_values(samples[h]) for h in headers if samples and h in samples}
    lists = {}
    if linked and samples:
        for h in headers:
            found = find_list_column(table, h, samples.get(h, ()))
            if found is not None:
                lists[h] = found
    links = {t: path for t, path in linked_tables(table) if t not in own_files} if linked else {}
    rank = {t: i for i, t in enumerate([table, *links])}
    scored: dict[str, list[_Row]] = {}
    for h in headers:
        if h in lists:
            continue
        rows = _score_rows(table, h, profiles.get(h))
        for t in links:
            rows += _score_rows(t, h, profiles.get(h), LINK_WEIGHT, LINK_MIN)
        order = {c: i for i, c in enumerate(spec.column_names)}
        rows.sort(key=lambda r: (-r[0], rank[r[1]], order.get(r[2], 0), r[2]))
        scored[h] = rows

    assigned: dict[str, _Row] = {}
    used: set[tuple[str, str]] = set()
    pairs = sorted(((r, h) for h, rows in scored.items() for r in rows if r[0] >= MIN_COLUMN_SCORE),
                   key=lambda x: (-x[0][0], headers.index(x[1]), rank[x[0][1]], x[0][2]))
    for r, h in pairs:
        if h in assigned or (r[1], r[2]) in used:
            continue
        assigned[h] = r
        used.add((r[1], r[2]))

    out: list[ColumnMatch] = []
    for h in headers:
        if h in lists:
            lc = lists[h]
            out.append(ColumnMatch(h, lc.column, 0.9, (lc.reason,), (), lc.table, lc.split))
            continue
        rows = scored[h]
        prof = profiles.get(h)
        if h in assigned:
            score, t, col, nscore, phrase, fit = assigned[h]
            alts = tuple((_label(table, rt, c), round(s, 3)) for s, rt, c, *_ in rows
                         if (rt, c) != (t, col))[:2]
            reasons = [_name_reason(h, col, nscore, phrase)]
            reasons.append(_value_reason(prof, TABLES[t].by_name[col], fit))
            if t != table:
                reasons.append(f"a column of {t}, which each {table} row reaches by {links[t]} "
                               "(a denormalised file: the row carries its linked rows' columns)")
            out.append(ColumnMatch(h, col, round(min(score, 1.0), 3), tuple(reasons), alts,
                                   None if t == table else t))
            continue
        alts = tuple((_label(table, rt, c), round(s, 3)) for s, rt, c, *_ in rows)[:2]
        if _WIDE.match(h) and table == "appt":
            why = f"'{h}' looks like a wide appointment procedure column (PROC1..6 style); not mapped"
        elif rows and rows[0][0] >= MIN_COLUMN_SCORE:
            why = (f"best candidate {_label(table, rows[0][1], rows[0][2])} ({rows[0][0]:.2f}) is already "
                   "taken by a better-matching column")
        else:
            best = (f"best candidate {_label(table, rows[0][1], rows[0][2])} scores {rows[0][0]:.2f}"
                    if rows else "no candidate")
            why = f"no canonical column of {table} matches '{h}' well ({best} < {MIN_COLUMN_SCORE})"
        out.append(ColumnMatch(h, None, 0.0, (why,), alts))
    return tuple(out)


def _label(primary: str, table: str, column: str) -> str:
    return column if table == primary else f"{table}.{column}"


def _name_reason(h: str, col: str, nscore: float, phrase: str) -> str:
    if phrase == col:
        how = "canonical name" if nscore >= 1 else f"similar to the canonical name, {nscore:.2f}"
    else:
        how = f"synonym '{phrase}'" + ("" if nscore >= 1 else f", {nscore:.2f}")
    return f"name '{h}' ~ {col} ({how})"


def _value_reason(p: ValueProfile | None, col: Column, fit: float | None) -> str:
    if p is None:
        return "no sample values; matched by name"
    if fit is None:
        return "column is empty in the sample; matched by name"
    return f"values fit kind {col.kind}: {KIND_WORDS[col.kind]} ({round(100 * fit)} %)"


# ---- files ---------------------------------------------------------------------------------------
def _file_name_score(stem: str, table: str) -> tuple[float, str]:
    toks = normalize(stem)
    # vendors prefix table names: tblPatient, dbo_Patients, export_patient
    toks = tuple(t for t in toks if t not in ("tbl", "dbo", "export", "exp", "table", "data", "csv")) or toks
    best = (0.0, table)
    for text, ptoks in _table_phrases(table):
        s = _cached_sim(toks, ptoks)
        if s > best[0]:
            best = (s, text)
    return best


def _column_cover(headers: Sequence[str], table: str) -> float:
    """F1 of header -> column coverage by name (cheap: no values, no one-to-one)."""
    if not headers:
        return 0.0
    cols: set[str] = set()
    hit = 0
    for h in headers:
        scores = _name_scores(h, table, fuzzy=False)
        col, (s, _) = max(scores.items(), key=lambda kv: kv[1][0]) if scores else ("", (0.0, ""))
        if s >= 0.8:
            hit += 1
            cols.add(col)
    if not hit:
        return 0.0
    precision = hit / len(headers)
    recall = len(cols) / len(TABLES[table].columns)
    return 2 * precision * recall / (precision + recall)


def match_table(file: str, headers: Sequence[str]) -> tuple[str | None, float, tuple[str, ...],
                                                             tuple[tuple[str, float], ...]]:
    """The canonical table of one file: by file name and by how well its header covers the table."""
    stem = Path(file).name.rsplit(".", 1)[0]
    ranked: list[tuple[float, str, float, str, float]] = []
    for t in TABLES:
        fscore, phrase = _file_name_score(stem, t)
        cover = _column_cover(headers, t)
        ranked.append((0.4 * fscore + 0.6 * cover, t, fscore, phrase, cover))
    ranked.sort(key=lambda r: (-r[0], r[1]))
    score, t, fscore, phrase, cover = ranked[0]
    alts = tuple((r[1], round(r[0], 3)) for r in ranked[1:3])
    if score < MIN_TABLE_SCORE:
        return None, round(score, 3), (f"no table fits '{Path(file).name}' (best {t} {score:.2f})",), alts
    if fscore >= MIN_TABLE_SCORE:
        how = f"synonym {phrase!r}" if phrase != t else "table name"
        by_name = f"file name '{stem}' ~ {t} ({how}, {fscore:.2f})"
    else:
        by_name = f"file name '{stem}' resembles no table name; chosen by its columns"
    reasons = (by_name, f"header covers {t} columns (F1 {cover:.2f})")
    margin = score - ranked[1][0]
    conf = min(1.0, score + 0.5 * margin)
    return t, round(conf, 3), reasons, alts


def _read_sample(path: Path) -> tuple[list[str], dict[str, list[str]]]:
    """Header and up to ``SAMPLE_ROWS`` rows of a file, read with the reader's format sniffing."""
    with path.open("rb") as fh:
        raw = fh.read(_READ_BYTES)
    fmt = sniff(raw[:SAMPLE_BYTES], name=path.name)
    text = codecs.decode(raw, fmt.encoding, errors="replace")
    if len(raw) == _READ_BYTES:
        text = text[: text.rfind("\n") + 1] or text
    lines = text.splitlines(keepends=True)[fmt.banner_lines:]
    reader = csv.reader(io.StringIO("".join(lines), newline=""), delimiter=fmt.delimiter,
                        quotechar=fmt.quotechar, strict=False)
    header = list(fmt.header)
    rows: list[list[str]] = []
    try:
        for i, row in enumerate(reader):
            if i == 0 and fmt.has_header:
                continue
            if len(row) <= 1 and (not row or is_trailer(row[0]) or not row[0].strip()):
                continue
            rows.append(row)
            if len(rows) >= SAMPLE_ROWS:
                break
    except csv.Error:
        pass
    if not header:
        header = [f"COLUMN{i + 1}" for i in range(max((len(r) for r in rows), default=0))]
    samples = {h: [r[i] if i < len(r) else "" for r in rows] for i, h in enumerate(header)}
    return header, samples


def _export_files(root: Path) -> list[Path]:
    files = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if not p.is_file() or any(part.upper() == "IMAGES" or part.startswith(".") for part in rel.parts):
            continue
        if p.suffix.lower() in _SKIP_SUFFIXES or p.name.lower() == "manifest.json":
            continue
        files.append(p)
    return files


def match_export(source: str | Path) -> list[FileMatch]:
    """Propose a table for every data file under ``source`` and a column for every header column."""
    root = Path(source)
    out: list[FileMatch] = []
    keys: dict[str, Sequence[str]] = {}
    read: list[tuple[str, str, list[str], dict[str, list[str]], tuple[str, float, tuple[str, ...], str]]] = []
    for path in _export_files(root):
        name = path.relative_to(root).as_posix()
        try:
            headers, samples = _read_sample(path)
        except Exception as exc:  # unreadable file: say so without any content
            out.append(FileMatch(name, None, 0.0, (f"could not read: {type(exc).__name__}",), ()))
            continue
        table, conf, reasons, alts = match_table(path.name, headers)
        if table is None:
            out.append(FileMatch(name, None, conf, reasons, ()))
            continue
        read.append((name, path.name, headers, samples,
                     (table, conf, reasons, ", ".join(f"{t} {s:.2f}" for t, s in alts))))
    own = {r[4][0] for r in read}  # tables with a file of their own: never a linked table's columns
    for name, _, headers, samples, (table, conf, reasons, alt) in read:
        cols = match_columns(table, headers, samples, linked=True, own_files=own)
        key = TABLES[table].pk[0] if len(TABLES[table].pk) == 1 else None
        keys[name] = next((samples.get(c.source, []) for c in cols if c.column == key and c.table is None),
                          [])
        out.append(FileMatch(name, table, conf, (*reasons, f"next best: {alt}"), cols))
    out.sort(key=lambda f: f.file)
    return _split_tables(out, keys)


def _split_tables(files: list[FileMatch], keys: Mapping[str, Sequence[str]]) -> list[FileMatch]:
    """Several files of one table: each says how it relates to the others (``shaped.split_reason``)."""
    by_table: dict[str, list[FileMatch]] = {}
    for f in files:
        if f.table is not None:
            by_table.setdefault(f.table, []).append(f)
    out: list[FileMatch] = []
    for f in files:
        group = by_table.get(f.table or "", [])
        if len(group) < 2 or f.table is None:
            out.append(f)
            continue
        columns = {g.file: {c.column for c in g.columns if c.column and c.table is None} for g in group}
        why, cap = split_reason(f.table, f.file, columns, keys)
        out.append(FileMatch(f.file, f.table, round(min(f.confidence, cap), 3), (*f.reasons, why), f.columns))
    return out
