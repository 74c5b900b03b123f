"""Arrow helpers shared by the vectorised kernels: cleaning, masks, and the column builder ``Out``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ._common import MASK_CHARS, NULL_TOKENS, WS, Result

__all__ = ["Out", "clean", "any_true", "match", "to_int", "unhandled", "NULL_STR", "I64", "TOKENS"]

TOKENS = pa.array(NULL_TOKENS, pa.string())
NULL_STR = pa.scalar(None, pa.string())
I64 = pa.int64()


def any_true(mask: pa.Array) -> bool:
    """True when some element of a boolean array is true (nulls ignored)."""
    return bool(pc.any(mask).as_py())


def match(a: pa.Array, pattern: str) -> pa.Array:
    """RE2 search of ``pattern`` in every cell; false (not null) for null cells."""
    return pc.fill_null(pc.match_substring_regex(a, pattern), False)


def to_int(a: pa.Array) -> pa.Array:
    return pc.cast(a, I64)


def clean(raw: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(trimmed text with null tokens/masks as null, mask-hit flags) of a raw string column."""
    t = pc.utf8_trim(raw, characters=WS)
    core = pc.utf8_trim(t, characters=MASK_CHARS)
    # A value made only of mask characters is a mask ("  /  /  ", "(   )   -    "), except a
    # bare "-" (no padding), which is data (LOOKUP.SIGN of a credit adjustment).
    blank = pc.and_(pc.equal(pc.binary_length(core), 0), pc.not_equal(raw, "-"))
    null = pc.fill_null(pc.or_(blank, pc.is_in(t, value_set=TOKENS)), True)
    cleaned = pc.if_else(null, NULL_STR, t)
    maskhit = pc.fill_null(pc.and_(blank, pc.greater(pc.binary_length(t), 0)), False)
    return cleaned, maskhit


class Out:
    """Values, codes and actions of one column under construction."""

    def __init__(self, values: pa.Array, typ: pa.DataType) -> None:
        self.typ = typ
        self.values = values if values.type == typ else pc.cast(values, typ)
        self.codes: pa.Array = pa.nulls(len(values), pa.string())
        self.actions: pa.Array = pa.nulls(len(values), pa.string())

    def mark(self, mask: pa.Array, code: str, action: str) -> None:
        """Set ``code``/``action`` where ``mask`` is true."""
        if any_true(mask):
            mask = pc.fill_null(mask, False)
            self.codes = pc.if_else(mask, code, self.codes)
            self.actions = pc.if_else(mask, action, self.actions)

    def fallback(self, source: pa.Array, mask: pa.Array, fn: Callable[[Any], Result]) -> None:
        """Replace value, code and action where ``mask`` is true by ``fn(source cell)``."""
        mask = pc.fill_null(mask, False)
        if not any_true(mask):
            return
        res = [fn(s) for s in pc.filter(source, mask).to_pylist()]
        self.values = pc.replace_with_mask(self.values, mask, pa.array([r[0] for r in res], self.typ))
        self.codes = pc.replace_with_mask(self.codes, mask, pa.array([r[1] for r in res], pa.string()))
        self.actions = pc.replace_with_mask(self.actions, mask, pa.array([r[2] for r in res], pa.string()))


def unhandled(c: pa.Array, values: pa.Array) -> pa.Array:
    """Cells with text that the fast path left without a value (they go to the scalar parser)."""
    return pc.and_(pc.is_valid(c), pc.is_null(values))
