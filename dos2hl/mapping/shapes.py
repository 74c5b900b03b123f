"""Masked value shapes: what a column's values look like, with every value masked.

The review page and the model-backed proposer show a person (or a model) what a column holds without
showing a value: letters become ``A``/``a`` runs, digits become ``#``, known date and time layouts are
named (``YYYY-MM-DD``), and only the most common shapes are kept, with the column's null rate and
distinct count. ``Smith`` is ``Aa… (5)``, ``555-867-5309`` is ``###-###-####``, a note is
``text (12 words)``. A shape never carries a letter or a digit of the value itself.

Shapes are computed from the same sample of rows the matcher reads (``match.SAMPLE_ROWS``), in memory.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ColumnShape", "column_shape", "export_samples", "export_shapes", "mask"]

#: how many distinct shapes a column keeps (the most common first)
TOP_SHAPES = 5
#: a value of more words than this is described by its word count alone
MAX_TOKENS = 6
_NULLS = frozenset({"", "NULL", "(NULL)", "N/A", "NONE"})
_TOKEN = re.compile(r"[A-Za-z]+|\d+|\s+|.", re.S)
_SAFE_PUNCT = frozenset("-/.:@,;()+_#&'*$%")
#: digit layouts that are dates or times, named the way people read them
_NAMED = {
    "####-##-##": "YYYY-MM-DD", "##/##/####": "MM/DD/YYYY", "#/##/####": "M/DD/YYYY",
    "##/#/####": "MM/D/YYYY", "#/#/####": "M/D/YYYY", "##/##/##": "MM/DD/YY", "########": "YYYYMMDD?",
    "####-##-## ##:##:##": "YYYY-MM-DD hh:mm:ss", "####-##-##T##:##:##": "YYYY-MM-DDThh:mm:ss",
    "##/##/#### ##:##": "MM/DD/YYYY hh:mm", "##:##": "hh:mm", "##:##:##": "hh:mm:ss",
}


def _letters(run: str, *, alone: bool) -> str:
    if run.isupper():
        shape = "A…"
    elif run.islower():
        shape = "a…"
    elif run[0].isupper() and run[1:].islower():
        shape = "Aa…"
    else:
        shape = "Aa…"  # mixed case: McDonald, iPhone
    return f"{shape} ({len(run)})" if alone else shape


def mask(value: str) -> str:
    """The shape of one cell: no letter or digit of ``value`` survives."""
    v = value.strip()
    if v.upper() in _NULLS:
        return "(empty)"
    tokens = _TOKEN.findall(v)
    words = sum(1 for t in tokens if t[0].isalnum())
    if words > MAX_TOKENS:
        return f"text ({words} words)"
    if len(tokens) == 1 and tokens[0].isalpha():
        return _letters(tokens[0], alone=True)
    out: list[str] = []
    for t in tokens:
        if t.isalpha() and t.isascii():
            out.append(_letters(t, alone=False))
        elif t.isdigit() and t.isascii():
            out.append("#" * len(t) if len(t) <= 12 else f"#… ({len(t)})")
        elif t.isspace():
            out.append(" ")
        elif t in _SAFE_PUNCT:
            out.append(t)
        else:
            out.append("?")  # any other character (non-ASCII letters included) is not shown
    shape = "".join(out)
    return _NAMED.get(shape, shape)


@dataclass(frozen=True)
class ColumnShape:
    """What a column's sample looks like: counts and masked shapes only."""

    rows: int  # cells sampled
    nulls: int  # blank or NULL-like cells
    distinct: int  # distinct non-blank cells in the sample
    shapes: tuple[tuple[str, int], ...]  # the most common masked shapes, with their counts

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    def describe(self) -> str:
        """One line for a person or a prompt: ``YYYY-MM-DD 98%, (empty) 2%; 143 distinct``."""
        total = sum(n for _, n in self.shapes) or 1
        parts = ", ".join(f"{s} {round(100 * n / total)}%" for s, n in self.shapes)
        return f"{parts or '(no rows)'}; {self.distinct} distinct, {round(100 * self.null_rate)}% empty"


def column_shape(values: Sequence[str], top: int = TOP_SHAPES) -> ColumnShape:
    """Mask every cell of a sample and keep the ``top`` most common shapes."""
    cells = [v if v is not None else "" for v in values]
    counts: Counter[str] = Counter(mask(v) for v in cells)
    nulls = counts.get("(empty)", 0)
    distinct = len({v.strip() for v in cells if v.strip().upper() not in _NULLS})
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return ColumnShape(rows=len(cells), nulls=nulls, distinct=distinct, shapes=tuple(ranked))


def export_samples(source: str | Path, files: Iterable[str] | None = None) -> Iterator[tuple[str, list[str]]]:
    """``(FILE.COLUMN, its sampled cells)`` for every data file of an export folder (or only the stems in
    ``files``), read as the matcher reads them; unreadable files are left out (the matcher reports them).
    The cells stay in memory: callers keep shapes and counts, never a cell."""
    from .match import _export_files, _read_sample

    wanted = {f.upper() for f in files} if files is not None else None
    for path in _export_files(Path(source)):
        stem = Path(path.name).stem
        if wanted is not None and stem.upper() not in wanted:
            continue
        try:
            headers, samples = _read_sample(path)
        except Exception:  # noqa: BLE001 - a file we cannot read has no shapes; never its content
            continue
        for h in headers:
            yield f"{stem}.{h}", list(samples.get(h, []))


def export_shapes(source: str | Path, files: Iterable[str] | None = None) -> dict[str, ColumnShape]:
    """``FILE.COLUMN`` (file stem, as in ``mapping.yaml``) -> its shape (``export_samples``)."""
    return {key: column_shape(cells) for key, cells in export_samples(source, files)}
