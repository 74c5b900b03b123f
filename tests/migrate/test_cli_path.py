"""The operator's path on the command line, against the sandbox over HTTP, on a vendor-renamed export:
map propose -> (gate) -> map confirm -> provision --plan/--apply -> providers -> migrate --json."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

from dos2hl.cli import app
from tests.mapping.variants import VARIANTS, write_variant
from tests.migrate.conftest import EXPORT_DATE, make_world


def test_operator_path_on_a_renamed_export(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from dos2hl.phi import create_key_file
    from dos2hl.sandbox import running

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "k" / "phi.key")))
    monkeypatch.setenv("DOS2HL_GOVERNOR_BURST", "100000")
    monkeypatch.setenv("DOS2HL_GOVERNOR_WINDOW_S", "1")
    w = make_world(tmp_path, monkeypatch, patients=20, provisioned=False)
    w.stop()
    renamed = tmp_path / "vendor_export"
    write_variant(w.export, renamed, VARIANTS["opendental_like"])
    run = CliRunner().invoke
    mapping = tmp_path / "vendor-mapping.yaml"
    date = ["--export-date", EXPORT_DATE.isoformat()]
    # as make_world's in-process app: each operation's first 25 requests validated against the contract
    # and one in 25 after (over HTTP the default validates every request; the contract has its own tests)
    with running(w.state, burst=(100000, 1.0), request_checks=25) as base:
        lf = yaml.safe_load(w.locations.read_text())
        lf["target"] = base
        w.locations.write_text(yaml.safe_dump(lf))
        res = run(app, ["map", "propose", str(renamed), "--out", str(mapping), "--json"])
        assert res.exit_code == 0, res.output
        proposed = json.loads(res.stdout)
        assert proposed["files"] == 26 and proposed["fields"] > 300
        common = ["--mapping", str(mapping), "--locations", str(w.locations)]
        res = run(app, ["migrate", str(renamed), *common, "--sample", "0", *date])
        assert res.exit_code == 2 and "not confirmed" in res.output  # the gate: nothing written yet
        assert sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) == 0
        assert run(app, ["map", "confirm", str(mapping), "--by", "Dr. Rivera"]).exit_code == 0
        res = run(app, ["provision", *common, "--source", str(renamed), "--plan"])
        assert res.exit_code == 0 and "to create" in res.output, res.output
        res = run(app, ["provision", *common, "--source", str(renamed), "--apply"])
        assert res.exit_code == 0, res.output
        res = run(app, ["provision", *common, "--source", str(renamed), "--plan", "--json"])
        plans = json.loads(res.stdout)
        assert all(p["summary"]["create"] == 0 for p in plans.values())  # apply done
        res = run(app, ["migrate", str(renamed), *common, "--sample", "0", *date])
        assert res.exit_code == 2 and "pipeline" in res.output  # the manual steps are not done yet
        from dos2hl.sandbox import add_pipeline

        for loc, p in plans.items():  # the practice's admin creates the pipelines by hand, as listed
            for c in p["changes"]:
                if c["action"] == "manual" and c["kind"] == "pipeline":
                    add_pipeline(w.state, w.loc_ids[loc], c["key"], c["options"])
        res = run(app, ["providers", str(renamed), "--locations", str(w.locations), "--out",
                        str(tmp_path / "providers"), "--profile", str(mapping), *date])
        assert res.exit_code == 0, res.output
        res = run(app, ["migrate", str(renamed), *common, "--sample", "5", "--approve", "--json", *date])
        assert res.exit_code == 0, res.output
        out = json.loads(res.stdout.strip().splitlines()[-1])
        assert out["status"] == "completed"
        assert set(out["locations"]) == {"L001", "L002"}
        written = sum(d["objects"]["patient"]["written"] for d in out["locations"].values())
        assert written == sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) > 0
        assert Path(out["report"]).exists()

        # the same export again under a new run id (issue 13.1): everything is adopted, nothing created twice
        res = run(app, ["migrate", str(renamed), *common, "--sample", "0", "--run-id", "again", *date])
        assert res.exit_code == 0, res.output
        assert "already held" in res.stdout and "nothing created twice" in res.stdout
        assert sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) == written
