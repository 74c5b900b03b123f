"""Infer the type of a column the export profile does not map, from a sample of its values.

Each candidate kind is tried with the same parsers the reader uses; the first kind that reads at
least ``THRESHOLD`` of the non-blank sample (without blanking it) wins, else ``str`` (or ``memo``
when values span lines). Used for the audit's "custom fields discovered" section: a person maps
these columns knowing what they hold.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from ..model import Column
from ..sources.values import ParseContext, parse_column

__all__ = ["infer_kind", "THRESHOLD", "SAMPLE"]

THRESHOLD = 0.95
SAMPLE = 2000
_CANDIDATES = ("bool", "int", "money", "date", "datetime", "time", "phone", "email", "zip")


def infer_kind(values: list[str], export_date: dt.date) -> str:
    """The canonical kind that best reads ``values`` (raw strings, blanks allowed)."""
    arr = pa.array(values[:SAMPLE], pa.string())
    ctx = ParseContext(export_date=export_date)
    probe = parse_column(arr, Column("_probe", "str", "D"), ctx).values
    present = len(probe) - probe.null_count
    if not present:
        return "empty"
    for kind in _CANDIDATES:
        parsed = parse_column(arr, Column("_probe", kind, "D"), ctx)  # type: ignore[arg-type]
        # Read means: a value came out and the parser neither blanked nor merely flagged it.
        clean = pc.fill_null(pc.not_equal(parsed.actions, "flagged"), True)
        read = pc.and_(pc.and_(pc.is_valid(parsed.values), pc.is_valid(probe)), clean)
        ok = pc.sum(read.cast(pa.int64())).as_py() or 0
        if ok / present >= THRESHOLD:
            return kind
    multi = pc.any(pc.fill_null(pc.match_substring(probe, "\n"), False)).as_py()
    return "memo" if multi else "str"
