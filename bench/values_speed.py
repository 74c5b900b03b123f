"""Cells/s of ``dos2hl.sources.values.parse_column`` per kind on clean, canonical input.

Run: ``.venv/bin/python bench/values_speed.py [n]``; prints one JSON object (kind -> cells/s).
Not a test: a quick check of the >= 2M cells/s target of the vectorised kernels.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import sys
import time

import pyarrow as pa

from dos2hl.model import Column
from dos2hl.sources.values import ParseContext, parse_column


def samples(n: int) -> dict[str, tuple[Column, list[str | None]]]:
    r = random.Random(1)

    def col(kind: str, name: str = "x", values: tuple[str, ...] = ()) -> Column:
        return Column(name=name, kind=kind, phi="R", values=values)  # type: ignore[arg-type]

    def blank(v: str) -> str | None:
        return None if r.random() < 0.1 else v

    return {
        "date": (
            col("date"),
            [
                blank(f"{r.randint(1, 12):02d}/{r.randint(1, 28):02d}/{r.randint(1990, 2024)}")
                for _ in range(n)
            ],
        ),
        "datetime": (
            col("datetime"),
            [
                blank(
                    f"{r.randint(1, 12):02d}/{r.randint(1, 28):02d}/{r.randint(1990, 2024)} "
                    f"{r.randint(1, 12):02d}:{r.randint(0, 59):02d}:{r.randint(0, 59):02d} "
                    f"{r.choice('AP')}M"
                )
                for _ in range(n)
            ],
        ),
        "time": (
            col("time"),
            [
                blank(f"{r.randint(1, 12):02d}:{r.choice([0, 15, 30, 45]):02d} {r.choice('AP')}M")
                for _ in range(n)
            ],
        ),
        "money": (col("money"), [blank(f"{r.randint(-500, 5000)}.{r.randint(0, 99):02d}") for _ in range(n)]),
        "int": (col("int"), [blank(str(r.randint(1, 10**7))) for _ in range(n)]),
        "bool": (col("bool"), [blank(r.choice("YN")) for _ in range(n)]),
        "phone": (
            col("phone"),
            [blank(f"({r.randint(200, 999)}) 555-01{r.randint(0, 99):02d}") for _ in range(n)],
        ),
        "zip": (col("zip"), [blank(f"{r.randint(1000, 99999):05d}") for _ in range(n)]),
        "str": (
            col("str"),
            [blank(r.choice(["Garcia", "Smith", "O'Brien", "12 Elm St", "Springfield"])) for _ in range(n)],
        ),
        "code": (col("code"), [blank(r.choice(["DR1", "HYG2", "L001"])) for _ in range(n)]),
        "enum": (
            col("enum", values=("A", "I", "N", "X", "D", "Z", "P")),
            [blank(r.choice("AINXDZP")) for _ in range(n)],
        ),
        "email": (col("email"), [blank(f"user{r.randint(1, 9999)}@example.com") for _ in range(n)]),
        "state": (col("state"), [blank(r.choice(["MA", "NY", "CA"])) for _ in range(n)]),
        "memo": (
            col("memo"),
            [blank(r.choice(["PCN allergy\r\npremed - knee", "ok", "see chart"])) for _ in range(n)],
        ),
        "proc_code": (
            col("code", "proc_code"),
            [blank(r.choice(["D0120", "D1110", "D0274"])) for _ in range(n)],
        ),
        "tooth": (col("str", "tooth"), [blank(str(r.randint(1, 32))) for _ in range(n)]),
    }


def main(n: int = 1_000_000) -> None:
    ctx = ParseContext(export_date=dt.date(2024, 4, 12))
    out: dict[str, int] = {}
    for kind, (column, cells) in samples(n).items():
        arr = pa.array(cells, pa.string())
        parse_column(arr[:1000], column, ctx)  # warm up
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            p = parse_column(arr, column, ctx)
            best = min(best, time.perf_counter() - t0)
        assert p.codes.null_count == n, kind  # canonical input: no findings
        out[kind] = round(n / best)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
