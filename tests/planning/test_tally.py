"""``dos2hl plan`` counts each shard without building its payloads (``planning.tally``): the counts must be
those of the run's own plan (``plan_shard``, counted by ``counts.counted_plan``), shard for shard, on a
world with every object kind and ugly inputs (RTF and HTML notes with pictures, revision chains and a
note amending a missing one, excluded patients, a quarantined patient row and an appointment of a
missing patient, documents that cannot go)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest

from dos2hl.generate import GenerateParams, generate

DATE = dt.date(2025, 6, 30)
# a 1x1 PNG, as RTF hex: a picture with data (one file to upload)
_PNG = ("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c4890000000d49444154789c6360000002"
        "000154a24f5d0000000049454e44ae426082")


def _append(path: Path, change: dict[str, str]) -> None:
    """Append a copy of the file's first data row with ``change`` (ASCII values: any encoding takes them)."""
    raw = path.read_bytes()
    rows = csv.reader(io.StringIO(raw.decode("latin-1")))
    header = next(rows)
    first = next(rows)
    row = [change.get(h, v) for h, v in zip(header, first, strict=True)]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(row)
    sep = b"" if raw.endswith(b"\n") else b"\r\n"
    path.write_bytes(raw + sep + out.getvalue().encode("ascii"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    from dos2hl.api import stage_export
    from dos2hl.mapping.model import save_mapping
    from dos2hl.mapping.propose import propose

    out = tmp_path_factory.mktemp("tally")
    generate(out, GenerateParams(seed=3, patients=160, locations=2, mess="nasty", images="stub",
                                 export_date=DATE))
    export = out / "export"
    _append(export / "PATIENT.CSV", {"PAT_ID": "X17"})  # quarantined: not an id
    _append(export / "APPT.CSV", {"APPT_ID": "990001", "PAT_ID": "990001"})  # its patient does not exist
    _append(export / "CLINNOTE.CSV", {"NOTE_ID": "990002", "AMENDS_NOTE_ID": "990003", "VOID_FLG": "N",
                                      "NOTE_FMT": "RTF",
                                      "NOTE_TEXT": r"{\rtf1\ansi see {\pict\pngblip " + _PNG + r"}\par}"})
    _append(export / "CLINNOTE.CSV", {"NOTE_ID": "990004", "AMENDS_NOTE_ID": "", "VOID_FLG": "N",
                                      "NOTE_FMT": "HTML",
                                      "NOTE_TEXT": '<p>x-ray <img src="http://example.invalid/a.png"></p>'})
    _append(export / "CLINNOTE.CSV", {"NOTE_ID": "990005", "AMENDS_NOTE_ID": "", "VOID_FLG": "N",
                                      "NOTE_FMT": "TXT", "NOTE_TEXT": "picture taken, no pict here"})
    mapping = Path(save_mapping(propose(export).confirm("test"), out / "mapping.yaml"))
    staged = out / "staged"
    stage_export(export, staged, profile=str(mapping), export_date=DATE)
    return export, mapping, staged


def _checked(monkeypatch: pytest.MonkeyPatch, seen: list[tuple[str, Any]]) -> None:
    """Every shard tally_shard counts is also planned by plan_shard and counted: both must agree."""
    from dos2hl.planning import counts, tally
    from dos2hl.planning import plan as planning

    lean = tally.tally_shard

    def both(spec: Any, relations: Any) -> Any:
        got = lean(spec, relations)
        want = counts.counted_plan(planning.plan_shard(spec, plain=True)[0], relations)
        assert list(got.kinds.items()) == list(want.kinds.items()), spec.name  # zero kinds and order too
        assert (got.patients, got.years, got.noted) == (want.patients, want.years, want.noted), spec.name
        seen.append((spec.name, want))
        return got

    monkeypatch.setattr(tally, "tally_shard", both)


@pytest.mark.parametrize("policy", ["association", "lookup_field"])
def test_the_tally_is_the_plans_count_shard_for_shard(world: tuple[Path, Path, Path], policy: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.mapping.model import load_mapping
    from dos2hl.quota import plan_quota

    export, mapping, staged = world
    manifest = json.loads((staged / "manifest.json").read_text())
    assert manifest["totals"]["quarantined"] >= 2  # the broken patient row, the missing patient's visit
    if policy == "lookup_field":  # the relations the map could choose: records without relation calls
        from dos2hl.mapping.model import save_mapping
        from dos2hl.planning.transform import RECORD_TABLES

        fmap = load_mapping(mapping)
        fmap = fmap.model_copy(update={"relations": {k: "lookup_field" for k in RECORD_TABLES}})

        mapping = Path(save_mapping(fmap, mapping.with_name("lookup.yaml")))
    seen: list[tuple[str, Any]] = []
    _checked(monkeypatch, seen)
    out = plan_quota(export, mapping, staged=str(staged), export_date=DATE, jobs=1)
    assert len(seen) == sum(1 for _ in manifest["tables"]["patient"]["shards"]) > 2
    kinds: dict[str, int] = {}
    for _name, c in seen:
        for k, n in c.kinds.items():
            kinds[k] = kinds.get(k, 0) + n
    # the world has every kind of payload (else the comparison proves little)
    for k in ("contact", "record:insurance_record", "record:treatment_plan", "record:clinical_note",
              "record:ledger_entry", "record:insurance_claim", "opportunity:appointment",
              "opportunity:recall", "event", "note:referral", "note:activity", "file:note_image",
              "file:document", "file_link"):
        assert kinds.get(k, 0) > 0, k
    assert any(k.startswith("relation:") for k in kinds) == (policy == "association")
    assert sum(v["patients"] for v in out["locations"].values()) == kinds["contact"]


def test_note_text_is_converted_only_where_a_picture_may_be(world: tuple[Path, Path, Path],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The RTF/HTML conversion is most of a plan's cost and decides only the note images: it runs for the
    chains whose text holds ``pict`` or ``<img``, a small share of them (their counts stay the plan's)."""
    import dos2hl.richtext.notes as notes
    from dos2hl.planning import tally
    from dos2hl.quota import plan_quota

    export, mapping, staged = world
    composed: list[int] = []
    chains: list[int] = []
    real_compose, real_chains = notes.compose, notes.revision_chains

    def compose(chain: Any, *a: Any, **kw: Any) -> Any:
        composed.append(chain.head_id)
        return real_compose(chain, *a, **kw)

    def revision_chains(rows: Any) -> Any:
        got = real_chains(rows)
        chains.extend(c.head_id for c in got if not c.voided)
        return got

    monkeypatch.setattr(notes, "compose", compose)
    monkeypatch.setattr(notes, "revision_chains", revision_chains)
    seen: list[tuple[str, Any]] = []
    real_tally = tally.tally_shard
    monkeypatch.setattr(tally, "tally_shard", lambda spec, rel: seen.append(spec) or real_tally(spec, rel))
    plan_quota(export, mapping, staged=str(staged), export_date=DATE, jobs=1)
    assert seen and chains
    assert 0 < len(composed) < len(chains) / 4, (len(composed), len(chains))
    assert 990002 in composed and 990004 in composed and 990005 in composed  # "pict", "<img", "pict"


def test_an_events_year_is_the_year_of_its_start_in_utc() -> None:
    """``event_year`` takes the date's year but on 31 December and 1 January, where the office's offset
    can move the instant across the new year: there it is the UTC year of the run's own event start."""
    from dos2hl.planning.crm import event_times
    from dos2hl.planning.tally import event_year
    from dos2hl.planning.tally import utc_year as _year

    zones = [None, "UTC", "America/New_York", "Pacific/Kiritimati", "Pacific/Pago_Pago",
             "Australia/Lord_Howe", "Asia/Kathmandu", "Not/AZone"]
    days = [dt.date(2024, 12, 31), dt.date(2025, 1, 1), dt.date(2024, 3, 10), dt.date(2024, 11, 3),
            dt.date(2024, 6, 15), dt.date(2024, 12, 30), dt.date(2025, 1, 2)]
    times = [dt.time(0, 0), dt.time(0, 30), dt.time(2, 30), dt.time(12, 0), dt.time(14, 5), dt.time(23, 59)]
    moved = 0
    for tz in zones:
        for d in days:
            for t in times:
                start = event_times(d, t, 45, tz)
                assert start is not None
                want = _year(start[0])
                assert event_year(d, t, 45, tz) == want, (tz, d, t)
                moved += want != d.year
    assert moved > 0  # some instants are in the other year: the boundary is exercised
    assert event_year(None, dt.time(9), 30, "UTC") is None and event_year(dt.date(2024, 1, 5), None, 30,
                                                                        "UTC") is None
