"""PHI hygiene: patient values reach HighLevel's records and nothing else (logs, ledger, report, journal,
file names, exceptions)."""

from __future__ import annotations

import logging
from pathlib import Path

import pyarrow.parquet as pq

from dos2hl.migrate import MigrateOptions, migrate
from dos2hl.migrate.ledger import read_ledger
from dos2hl.storage import open_store
from tests.migrate.conftest import EXPORT_DATE, World


def _canaries(w: World) -> set[str]:
    pats = pq.read_table(w.export.parent / "truth" / "patient.parquet").to_pylist()
    out: set[str] = set()
    for p in pats:
        for col in ("lname", "fname", "email", "cphone", "hphone", "addr1"):
            v = p.get(col)
            if isinstance(v, str) and len(v) >= 6:
                out.add(v)
        if p.get("birthdate"):
            out.add(str(p["birthdate"]))
    notes = pq.read_table(w.export.parent / "truth" / "clinnote.parquet").column("note_text").to_pylist()
    out |= {n[:40] for n in notes if isinstance(n, str) and len(n) >= 40}
    return out


def test_no_patient_value_outside_the_records(world: World, caplog) -> None:  # type: ignore[no-untyped-def]
    w = world
    canaries = _canaries(w)
    assert len(canaries) > 50
    caplog.set_level(logging.DEBUG)
    out = migrate(MigrateOptions(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 export_date=EXPORT_DATE, sample=5, workers=2), approve=lambda _r: True,
                  client_factory=w.factory)
    assert out["status"] == "completed"
    run = Path(w.root) / "runs" / out["run_id"]
    texts = {"logs": caplog.text, "journal": (w.state / "journal.jsonl").read_text()}
    for f in (run / "report").iterdir():
        texts[f"report/{f.name}"] = f.read_text()
    for f in (run / "sample" / "report").iterdir():
        texts[f"sample/{f.name}"] = f.read_text()
    for f in (run / "households").iterdir():
        texts[f"households/{f.name}"] = f.read_text()
    ledger = read_ledger(open_store(str(run)))
    texts["ledger"] = "\n".join(str(v) for col in ledger.columns for v in col.to_pylist())
    names = "\n".join(str(p.relative_to(w.root)) for p in Path(w.root).rglob("*"))
    texts["file names"] = names
    # the values did reach HighLevel (the check is not vacuous)
    stored = "\n".join(str(c) for loc in w.loc_ids for c in w.dump(loc)["contacts"])
    assert sum(c in stored for c in canaries) > 20
    leaks = {where: sorted(c for c in canaries if c in text)[:3] for where, text in texts.items()}
    assert not any(leaks.values()), leaks
