"""``dos2hl plan --staged``: planning from the export's staging (``dos2hl stage --profile MAPPING``) answers
what planning with its own staging answers, and a staging that is not this export's with this map is
refused with the reason (no value in the message)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dos2hl.cli import app
from dos2hl.generate import GenerateParams, generate

DATE = "2025-06-30"


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from dos2hl.mapping.model import save_mapping
    from dos2hl.mapping.propose import propose

    out = tmp_path_factory.mktemp("staged-plan")
    generate(out, GenerateParams(seed=11, patients=60, locations=2, mess="typical", images="none"))
    mapping = save_mapping(propose(out / "export").confirm("test"), out / "mapping.yaml")
    return out / "export", Path(mapping)


def _run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_plan_from_the_staging_answers_as_plan_staging_it_again(practice: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    export, mapping = practice
    code, own = _run("plan", str(export), "--mapping", str(mapping), "--export-date", DATE, "--json")
    assert code == 0, own
    staged = tmp_path / "staged"
    code, out = _run("stage", str(export), "--to", str(staged), "--profile", str(mapping), "--export-date",
                     DATE, "--json")
    assert code == 0, out
    code, reused = _run("plan", str(export), "--mapping", str(mapping), "--export-date", DATE, "--json",
                        "--staged", str(staged))
    assert code == 0, reused
    assert json.loads(reused.strip().splitlines()[-1]) == json.loads(own.strip().splitlines()[-1])


def test_a_staging_of_another_profile_date_or_export_is_refused(practice: tuple[Path, Path],
                                                                tmp_path: Path) -> None:
    export, mapping = practice
    staged = tmp_path / "staged"
    code, out = _run("stage", str(export), "--to", str(staged), "--export-date", DATE)  # reference profile
    assert code == 0, out
    code, out = _run("plan", str(export), "--mapping", str(mapping), "--staged", str(staged))
    assert code != 0 and "profile 'reference'" in out and "--profile MAPPING" in out
    code, out = _run("stage", str(export), "--to", str(staged), "--profile", str(mapping), "--export-date",
                     DATE, "--overwrite")
    assert code == 0, out
    code, out = _run("plan", str(export), "--mapping", str(mapping), "--staged", str(staged),
                     "--export-date", "2025-07-01")
    assert code != 0 and "export date is 2025-06-30" in out
    changed = tmp_path / "export"
    import shutil

    shutil.copytree(export, changed)
    code, out = _run("plan", str(changed), "--mapping", str(mapping), "--staged", str(staged))
    assert code != 0 and "it was staged from" in out
    code, out = _run("plan", str(export), "--mapping", str(mapping), "--staged", str(tmp_path / "nothing"))
    assert code != 0 and "no manifest.json" in out


def test_a_file_changed_or_added_since_the_staging_is_refused(practice: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    import shutil

    export, mapping = practice
    copy = tmp_path / "export"
    shutil.copytree(export, copy)
    staged = tmp_path / "staged"
    code, out = _run("stage", str(copy), "--to", str(staged), "--profile", str(mapping),
                     "--export-date", DATE)
    assert code == 0, out
    recall = next(p for p in copy.rglob("*") if p.name.upper() == "RECALL.CSV")
    with open(recall, "ab") as f:
        f.write(b"\r\n")
    (copy / "EXTRA.CSV").write_bytes(b"A,B\r\n1,2\r\n")
    code, out = _run("plan", str(copy), "--mapping", str(mapping), "--staged", str(staged))
    assert code != 0 and "files changed or added since it was staged" in out
    assert recall.relative_to(copy).as_posix() in out and "EXTRA.CSV" in out


def test_the_plan_is_the_same_from_worker_processes(practice: tuple[Path, Path], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A DSO's plan is CPU-bound: its shards are planned in worker processes (``--jobs``). The counts
    must not depend on it: two spawned workers answer what this process answers, shard for shard."""
    import dos2hl.planning.counts as counts

    export, mapping = practice
    staged = tmp_path / "staged"
    code, out = _run("stage", str(export), "--to", str(staged), "--profile", str(mapping), "--export-date",
                     DATE, "--json")
    assert code == 0, out
    args = ("plan", str(export), "--mapping", str(mapping), "--export-date", DATE, "--json", "--staged",
            str(staged))
    code, here = _run(*args, "--jobs", "1")
    assert code == 0, here
    spawned: list[int] = []
    real = counts.ProcessPoolExecutor

    def pool(*a: object, **kw: object) -> object:
        spawned.append(int(kw["max_workers"]))  # type: ignore[call-overload]
        return real(*a, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(counts, "MIN_SHARDS_PER_JOB", 1)  # two locations' shards are enough here
    monkeypatch.setattr(counts, "ProcessPoolExecutor", pool)
    code, there = _run(*args, "--jobs", "2")
    assert code == 0, there
    assert spawned == [2]
    assert json.loads(there.strip().splitlines()[-1]) == json.loads(here.strip().splitlines()[-1])


def test_the_parse_context_is_the_maps_base_profiles_date_order_and_decimal_comma(tmp_path: Path) -> None:
    """User-defined fields are parsed with the export's date order and decimal comma: those of the map's
    export profile (``to_profile``), read from its base profile without building every file's spec."""
    import datetime as dt

    import yaml

    from dos2hl.mapping.propose import reference_mapping
    from dos2hl.planning.plan import _parse_context
    from dos2hl.sources.profile import load_profile

    base = load_profile("reference").model_dump()
    base.update(name="dmy-comma", date_order="DMY", decimal_comma=True)
    path = tmp_path / "dmy.yaml"
    path.write_text(yaml.safe_dump(base))
    fmap = reference_mapping()
    fmap = fmap.model_copy(update={"export": fmap.export.model_copy(update={"profile": str(path)})})
    ctx = _parse_context("2024-06-28", fmap)
    full = fmap.to_profile()
    assert (ctx.date_order, ctx.decimal_comma) == (full.date_order, full.decimal_comma) == ("DMY", True)
    assert ctx.export_date == dt.date(2024, 6, 28)
