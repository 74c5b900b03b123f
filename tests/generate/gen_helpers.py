"""Independent readers of generated output, used to check the generator against its own claims."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from dos2hl.model import arrow_schema

MAGIC_ENC = ((b"\xff\xfe", "utf-16-le"), (b"\xef\xbb\xbf", "utf-8"))


def read_text(path: Path) -> str:
    raw = path.read_bytes()
    for bom, enc in MAGIC_ENC:
        if raw.startswith(bom):
            return raw[len(bom):].decode(enc)
    return raw.decode("cp1252")


def record_starts(text: str, quote: str, broken: set[int]) -> list[int]:
    """1-based physical start line of every data record, by scanning quote state line by line.

    ``broken``: record numbers with an unquoted embedded newline (CSV2); their second physical line
    looks like a record start and is skipped. The header (and a banner) precede the first record.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    starts: list[int] = []
    inside = False
    for i, line in enumerate(lines, 1):
        if not inside:
            starts.append(i)
        if line.count(quote) % 2 == 1:
            inside = not inside
    first = 2
    if text.startswith("Dent-O-Soft Export"):
        first = 3
    starts = [s for s in starts if s >= first]
    if text.rstrip("\r\n").split("\n")[-1].startswith("***"):
        starts = starts[:-1]
    out: list[int] = []
    skip = False
    for s in starts:
        if skip:
            skip = False
            continue
        out.append(s)
        if len(out) in broken:
            skip = True
    return out


def defects(run: Path) -> list[dict[str, Any]]:
    with (run / "truth" / "defects.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def truth(run: Path, table: str) -> list[dict[str, Any]]:
    return pq.read_table(run / "truth" / f"{table}.parquet", schema=arrow_schema(table)).to_pylist()
