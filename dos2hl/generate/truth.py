"""The run's side outputs: recon.json, dup_clusters.json, profile.yaml and manifest.json.

Per-guarantor ledger totals are streamed to a side file during the run and folded into recon.json
at the end, so even a DSO run never holds them all in a Python dict.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import yaml

from .documents import IMAGE_ROOTS
from .layout import Layout
from .params import GENERATOR_VERSION, GenerateParams, Plan
from .writer import DefectLog, SinkTotals

__all__ = ["Recon", "write_outputs"]


class Recon:
    """Collects what recon.json needs while rows stream past."""

    def __init__(self, truth: Path) -> None:
        self.path = truth / ".guarantors.jsonl"
        self._f = self.path.open("w", encoding="utf-8")
        self.guarantors = 0

    def guarantor(self, guar_id: int, ledger_cents: int, bal_cents: int) -> None:
        self._f.write(f"{guar_id}\t{ledger_cents}\t{bal_cents}\n")
        self.guarantors += 1

    def close(self) -> None:
        self._f.close()


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


def write_outputs(
    out: Path,
    params: GenerateParams,
    pl: Plan,
    lay: Layout,
    sinks: dict[str, SinkTotals],
    recon: Recon,
    dups: dict[str, list[int]],
    files: dict[str, int],
    defects: DefectLog,
) -> None:
    truth = out / "truth"
    recon.close()
    (truth / "dup_clusters.json").write_text(
        json.dumps(dups, indent=1, sort_keys=True) + "\n", encoding="utf-8"
    )
    claim_tot: Counter[str] = Counter()
    for batch in pq.ParquetFile(truth / "claim.parquet").iter_batches(
        columns=["status", "billed_amt", "paid_amt"]
    ):
        d = batch.to_pydict()
        for st, b, p in zip(d["status"], d["billed_amt"], d["paid_amt"], strict=True):
            claim_tot[f"{st}.count"] += 1
            claim_tot[f"{st}.billed_cents"] += int(b * 100)
            claim_tot[f"{st}.paid_cents"] += int(p * 100)
    with (truth / "recon.json").open("w", encoding="utf-8") as f:
        f.write("{\n")
        f.write(f' "counts": {json.dumps({t: s.records for t, s in sinks.items()}, sort_keys=True)},\n')
        by = {t: dict(sorted(s.counts.items())) for t, s in sinks.items() if s.count_col}
        f.write(f' "status_counts": {json.dumps(by, sort_keys=True, default=str)},\n')
        f.write(f' "claims": {json.dumps(dict(sorted(claim_tot.items())))},\n')
        f.write(' "ledger_by_guarantor": {')
        first = True
        with recon.path.open(encoding="utf-8") as g:
            for line in g:
                gid, led, bal = line.rstrip("\n").split("\t")
                f.write(
                    ("" if first else ",") + f'\n  "{gid}": {{"ledger_total": "{_money(int(led))}", '
                    f'"bal_total": "{_money(int(bal))}"}}'
                )
                first = False
        f.write("\n }\n}\n")
    recon.path.unlink()
    prof = lay.profile.model_dump(mode="json", exclude_defaults=False)
    prof["ledger_amount"]["mode"] = params.ledger_sign
    (out / "profile.yaml").write_text(yaml.safe_dump(prof, sort_keys=True), encoding="utf-8")
    manifest: dict[str, Any] = {
        "generator": "dos2hl.generate",
        "generator_version": GENERATOR_VERSION,
        "seed": params.seed,
        "parameters": params.model_dump(mode="json"),
        "patients_per_location": list(pl.patients_per_location),
        "profile": "profile.yaml",
        "image_roots": list(IMAGE_ROOTS),
        "defects": dict(sorted(defects.by_id.items())),
        "files": {},
    }
    for name in sorted(files):
        p = out / "export" / name
        manifest["files"][f"export/{name}"] = {
            "sha256": _sha(p),
            "bytes": p.stat().st_size,
            "records": files[name],
        }
    idx = truth / ".images.jsonl"
    if idx.exists():
        with idx.open(encoding="utf-8") as f:
            for line in f:
                d = json.loads(line)
                manifest["files"][d["path"]] = {"sha256": d["sha256"], "bytes": d["bytes"], "records": None}
        idx.unlink()
    for p in sorted(truth.iterdir()):
        manifest["files"][f"truth/{p.name}"] = {"sha256": _sha(p), "bytes": p.stat().st_size, "records": None}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
