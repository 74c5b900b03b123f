"""The model-backed proposer on renamed vendor variants, against a fake endpoint on 127.0.0.1.

No real model is asked (none is reachable from the test machine): the fake answers either the truth
(``oracle``: the best a model can do) or the truth with a share of columns replaced by random valid
targets (``noisy``: a model that is wrong on 20 % of columns). It measures what the merge does with
them: top-1 accuracy, entries left to review (< 0.8), wrong targets that would not be reviewed
(``wrong_at_or_above_0.8``: must stay 0), requests and prompt sizes.

    .venv/bin/python -m bench.model_propose [--patients 60] [--variants opendental_like,abbreviated]

Measured 2026-12-05 (60 patients, 405 columns, 26 files per variant; default 48,000-char prompts, two
requests per variant of ~47,000 and 11,500-18,400 characters):

================  =======  ==========  ===================  ===================
variant           offline  offline     oracle: acc / review  noisy 20 %: acc /
                  acc      to review   (2 requests)          review / wrong>=0.8
================  =======  ==========  ===================  ===================
opendental_like   0.9926   40          0.9951 / 3            0.9951 / 86 / 0
abbreviated       0.9877   265         1.0 / 5               0.9975 / 88 / 0
legacy_upper      0.9926   47          1.0 / 3               1.0 / 87 / 0
================  =======  ==========  ===================  ===================

Where the oracle disagrees with the matcher, the matcher's target stays (offline is the default) at a
confidence below 0.8 with both named: that is why the oracle's accuracy is not always 1.0.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from dos2hl.generate import GenerateParams, generate
from dos2hl.mapping.model import Mapping
from dos2hl.mapping.model_proposer import ModelOptions, candidates, refine
from dos2hl.mapping.propose import propose
from dos2hl.model import TABLES
from tests.mapping.fake_model import completion, fake_model
from tests.mapping.variants import VARIANTS, write_variant

__all__ = ["main", "measure"]


def _accuracy(m: Mapping, want: dict[str, tuple[str, str | None]]) -> float:
    got = {e.source: (e.table, e.column) for e in m.fields}
    return round(sum(got.get(s) == t for s, t in want.items()) / len(want), 4)


def measure(export: Path, work: Path, variant: str, wrong_rate: float = 0.2) -> dict[str, Any]:
    dst = work / variant
    truth = write_variant(export, dst, VARIANTS[variant])
    want = {f"{Path(f).stem}.{h}": (t, c) for f, (t, cols) in truth.items() for h, c in cols.items()}
    files = {Path(f).stem: t for f, (t, _) in truth.items()}
    offline = propose(dst)
    alts = candidates(dst)
    row: dict[str, Any] = {"columns": len(want), "offline_acc": _accuracy(offline, want),
                           "offline_to_review": sum(e.confidence < 0.8 for e in offline.fields)}
    for mode, rate in (("oracle", 0.0), (f"noisy{round(100 * wrong_rate)}", wrong_rate)):
        rng = random.Random(7)

        def script(req: dict[str, Any], srcs: list[str], rate: float = rate,
                   rng: random.Random = rng) -> tuple[int, bytes]:
            cols: dict[str, Any] = {}
            for s in srcs:
                t, c = want[s]
                if rng.random() < rate:
                    tt = rng.choice(list(TABLES))
                    cols[s] = {"table": tt, "column": rng.choice(TABLES[tt].column_names)}
                else:
                    cols[s] = {"table": t, "column": c} if c else None
            return 200, completion({"files": files, "columns": cols})

        with fake_model() as fake:
            fake.script = script
            t0 = time.perf_counter()
            opts = ModelOptions(url=fake.url, cache_dir=None)
            merged, stats = refine(offline, dst, opts, alternatives=alts)
            seconds = time.perf_counter() - t0
            sizes = [sum(len(m["content"]) for m in json.loads(r.body)["messages"]) for r in fake.requests]
        got = {e.source: e for e in merged.fields}
        row[mode] = {
            "acc": _accuracy(merged, want), "requests": stats.requests, "prompt_chars": sizes,
            "agreed": stats.agreed, "disagreed": stats.disagreed, "model_only": stats.model_only,
            "to_review": sum(e.confidence < 0.8 for e in merged.fields),
            "wrong_at_or_above_0.8": sum(1 for s, t in want.items()
                                         if (got[s].table, got[s].column) != t and got[s].confidence >= 0.8),
            "seconds": round(seconds, 2)}
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--patients", type=int, default=60)
    ap.add_argument("--variants", default="opendental_like,abbreviated,legacy_upper")
    ap.add_argument("--wrong-rate", type=float, default=0.2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        generate(work / "gen", GenerateParams(seed=1, patients=args.patients, mess="clean", images="none"))
        export = work / "gen" / "export"
        out = {v: measure(export, work, v, args.wrong_rate) for v in args.variants.split(",")}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
