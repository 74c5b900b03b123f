"""``make demo``: the whole chain on a generated practice, on embedded defaults.

Prefect's ephemeral API, local Ray (the shard workers and the governor actor), the HighLevel
sandbox in-process, local storage. ``dos2hl.demo.demo_world`` prepares what an operator would
(practice, sandbox, locations.yaml, proposed and auto-confirmed map, provisioning, provider report);
then the migration flow runs with the sample gate auto-approved (a printed warning says so).

    python -m flows.demo --out demo [--patients 300]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from prefect import flow
from pydantic import BaseModel, Field

from dos2hl.demo import _summary, demo_world
from dos2hl.generate import GenerateParams
from flows.migrate import MigrateParams, migrate_flow
from flows.source import SourceParams, prepare_source
from tasks.source import generate_practice


class DemoParams(BaseModel):
    """Where to build the practice and how big and dirty it is (the source-only rehearsal)."""

    out: str = Field("demo", description="Local folder for the practice and its run")
    practice: GenerateParams = GenerateParams(patients=2000, mess="typical")


@flow(name="demo-practice", flow_run_name="demo {params.out}", log_prints=True)
def demo_practice(params: DemoParams) -> dict[str, object]:
    """Generate a practice and prepare its source only (audit + stage): a rehearsal on fake data."""
    out = Path(params.out)
    generate_practice(out / "practice", params.practice)
    return prepare_source(SourceParams(
        source=str(out / "practice" / "export"), run_dir=str(out / "run"),
        audit_dir=str(out / "run" / "audit"),
        export_date=params.practice.export_date, overwrite=True,
    ))


def main() -> None:
    ap = argparse.ArgumentParser(description="dos2hl demo: the whole migration on a generated practice")
    ap.add_argument("--out", default="demo")
    ap.add_argument("--patients", type=int, default=150)
    ap.add_argument("--executor", choices=("ray", "threads"), default="ray")
    args = ap.parse_args()
    with demo_world(Path(args.out), patients=args.patients) as w:
        for line in w.lines:
            print(line)
        rep = migrate_flow(MigrateParams(source=str(w.export), mapping=str(w.mapping),
                                         locations=str(w.locations),
                                         sample=50, approve=True, executor=args.executor, workers=4,
                                         export_date=w.export_date))
    print(_summary(rep))
    print(f"report: {rep['paths']['md']}")
    print(f"        {rep['paths']['html']}")


if __name__ == "__main__":
    main()
