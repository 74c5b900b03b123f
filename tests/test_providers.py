"""Provider -> HighLevel user resolution against the in-process sandbox.

The practice is a small generated clean export (two locations) whose PROVIDER file is rewritten in a
copy so that the cases are known: two providers carry a sandbox user's email in other letter case
(matched), one lacks an email but shares its name with a sandbox user (a suggestion, never a match),
one has an email no user has, and the rest keep the generator's emails or none. The sandbox has no
API to create users, so extra users are added to its state with ``dos2hl.sandbox.add_user`` before the
app opens the state.
"""

from __future__ import annotations

import csv
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dos2hl.errors import ConfigError
from dos2hl.generate import GenerateParams, generate
from dos2hl.locations import LocationsFile, LocationTarget, open_client
from dos2hl.providers import ProviderReport, resolve_providers

BASE = "https://services.leadconnectorhq.com"
PARAMS = GenerateParams(seed=1, patients=60, locations=2, mess="clean", images="none")
MANAGER = "manager@practice.example"  # a user of both sub-accounts: a valid fallback_owner


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("providers-practice")
    generate(out, PARAMS)
    return out


@dataclass
class World:
    export: Path
    truth: Path
    loc_ids: dict[str, str]  # export location -> sandbox location id
    users: dict[str, list[dict[str, Any]]]  # export location -> sandbox users
    clients: dict[str, Any]

    def locations(self, fallback: str | None = None, only: list[str] | None = None) -> LocationsFile:
        return LocationsFile(target=BASE, fallback_owner=fallback, locations=[
            LocationTarget(source=src, location_id=lid, token_env=f"DOS2HL_TEST_TOKEN_{src}")
            for src, lid in self.loc_ids.items() if only is None or src in only])

    def user(self, loc: str, name: str) -> dict[str, Any]:
        return next(u for u in self.users[loc] if u["name"] == name)

    def resolve(self, fallback: str | None = None) -> ProviderReport:
        return resolve_providers(self.export, self.locations(fallback), clients=self.clients,
                                 export_date=PARAMS.export_date)


def _rewrite_emails(path: Path, emails: dict[str, str]) -> None:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    fields = list(rows[0])
    for r in rows:
        if r["PROV_ID"] in emails:
            r["EMAIL"] = emails[r["PROV_ID"]]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=fields, lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)


@pytest.fixture()
def world(generated: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from starlette.testclient import TestClient

    from dos2hl.sandbox import add_user, create_app, init_locations
    from dos2hl.sandbox.store import Store

    state = tmp_path / "state"
    tokens = init_locations(state, 2)
    loc_ids = dict(zip(["L001", "L002"], tokens, strict=True))
    add_user(state, loc_ids["L001"], "Randall", "Cuevas", "randall.c@elsewhere.example")
    for lid in loc_ids.values():
        add_user(state, lid, "Office", "Manager", MANAGER)
    store = Store(state)
    try:
        users = {src: store.list("user", lid) for src, lid in loc_ids.items()}
    finally:
        store.close()

    export = tmp_path / "export"
    shutil.copytree(generated / "export", export)
    dana1 = next(u for u in users["L001"] if u["name"] == "Dana Molar")["email"]
    sam2 = next(u for u in users["L002"] if u["name"] == "Sam Hygienist")["email"]
    _rewrite_emails(export / "PROVIDER.CSV", {
        "DR2": dana1.upper(),                        # matched, case-insensitively
        "DR5": f"  {sam2.title()} ",                 # matched despite case and blanks
        "DR1": "",                                   # no email; a user shares the name: suggestion only
        "DR4": "nobody@practice.example",            # an email no user has
        "DR8": "",                                   # no email
    })

    app = create_app(state, check_responses=True)
    tc = TestClient(app, base_url=BASE)
    w = World(export, generated / "truth", loc_ids, users, {})
    lf = w.locations()
    for src in loc_ids:
        monkeypatch.setenv(f"DOS2HL_TEST_TOKEN_{src}", tokens[loc_ids[src]])
        w.clients[src] = open_client(lf, src, transport=tc._transport)
    try:
        yield w
    finally:
        for c in w.clients.values():
            c.close()
        app.state.store.close()


def _expected_counts(truth: Path) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Owner counts computed straight from the generator's truth, independently of the reader."""
    pat = pd.read_parquet(truth / "patient.parquet", columns=["pat_id", "loc_id", "pri_prov", "hyg_prov"])
    appt = pd.read_parquet(truth / "appt.parquet", columns=["pat_id", "loc_id", "prov_id", "hyg_id"])

    def code(v: Any) -> str:
        return "" if v is None or pd.isna(v) else str(v).strip().upper()

    patients = Counter((code(r.loc_id), code(r.pri_prov) or code(r.hyg_prov)) for r in pat.itertuples())
    # an appointment is written to (and owned in) its patient's home sub-account, wherever it took place
    home = {int(r.pat_id): code(r.loc_id) for r in pat.itertuples()}
    appts = Counter(((home.get(int(r.pat_id)) if not pd.isna(r.pat_id) else None) or code(r.loc_id),
                     code(r.prov_id) or code(r.hyg_id)) for r in appt.itertuples())
    return patients, appts


def _row(report: ProviderReport, loc: str, prov: str) -> Any:
    return next(r for r in report.rows if (r.location, r.prov_id) == (loc, prov))


def test_matches_counts_and_suggestions(world: World) -> None:
    report = world.resolve()
    by = {(r.location, r.prov_id): r for r in report.rows}

    dr2 = by[("L001", "DR2")]
    assert dr2.match == "email" and dr2.user_id == world.user("L001", "Dana Molar")["id"]
    assert dr2.user_email == world.user("L001", "Dana Molar")["email"]
    dr5 = by[("L002", "DR5")]
    assert dr5.match == "email" and dr5.user_id == world.user("L002", "Sam Hygienist")["id"]
    assert {k for k, r in by.items() if r.match == "email"} == {("L001", "DR2"), ("L002", "DR5")}

    # A name-alike user is suggested, never assigned.
    dr1 = by[("L001", "DR1")]
    assert dr1.email is None and dr1.match == "none" and dr1.user_id is None
    assert dr1.suggestion is not None and "Randall Cuevas" in dr1.suggestion
    assert by[("L001", "DR4")].match == "none" and by[("L001", "DR4")].email == "nobody@practice.example"
    assert by[("L002", "DR8")].email is None and by[("L002", "DR8")].match == "none"
    assert all(r.suggestion is None for r in report.rows if r.match == "email")

    # Every provider of the file is reported, at its home location.
    prov = pd.read_parquet(world.truth / "provider.parquet", columns=["prov_id", "home_loc_id", "active_flg"])
    for p in prov.itertuples():
        assert (p.home_loc_id, p.prov_id) in by
        assert by[(p.home_loc_id, p.prov_id)].active == bool(p.active_flg)

    patients, appts = _expected_counts(world.truth)
    assert {k: r.patients for k, r in by.items() if r.patients} == dict(patients)
    assert {k: r.appointments for k, r in by.items() if r.appointments} == dict(appts)
    assert sum(r.patients for r in report.rows) == len(pd.read_parquet(world.truth / "patient.parquet",
                                                                      columns=["pat_id"]))
    # Patients with neither provider count on the pseudo-provider "" and need an owner too.
    assert patients[("L001", "")] >= 1 and by[("L001", "")].patients == patients[("L001", "")]

    unmatched = {(r.location, r.prov_id) for r in report.unmatched}
    assert ("L001", "DR1") in unmatched and ("L001", "DR2") not in unmatched
    assert all(r.patients or r.appointments for r in report.unmatched)

    assert report.owner_of("L001", "DR2") == dr2.user_id
    assert report.owner_of("l001", " dr2 ") == dr2.user_id
    assert report.owner_of("L001", "DR1") is None
    assert report.owner_of("L001", None) is None


def test_require_owners_names_unmatched_and_how_to_fix(world: World) -> None:
    report = world.resolve()
    with pytest.raises(ConfigError) as exc:
        report.require_owners()
    msg = str(exc.value)
    dr1 = _row(report, "L001", "DR1")
    assert f"L001/DR1 (Randall Cuevas): {dr1.patients} patient(s)" in msg
    assert "L001/DR2" not in msg
    assert "fallback_owner" in msg and "email" in msg


def test_fallback_owner_assigns_unmatched(world: World) -> None:
    report = world.resolve(fallback=MANAGER.upper())
    report.require_owners()  # passes
    assert report.unmatched == []
    manager = {loc: world.user(loc, "Office Manager")["id"] for loc in world.loc_ids}
    assert report.fallback_users == manager
    dr1 = _row(report, "L001", "DR1")
    assert dr1.match == "fallback" and dr1.user_id == manager["L001"] and dr1.user_email == MANAGER
    assert dr1.suggestion and "Randall Cuevas" in dr1.suggestion  # still shown, still not applied
    assert _row(report, "L001", "DR2").match == "email"  # an email match wins over the fallback
    assert report.owner_of("L002", "DR8") == manager["L002"]
    assert report.owner_of("L002", "NOT-A-PROVIDER") == manager["L002"]
    assert report.owner_of_patient("L001", None, "DR2") == _row(report, "L001", "DR2").user_id


@pytest.mark.parametrize("fallback", ["nobody@practice.example", "alex.frontdesk+1@sandbox-dental.example"])
def test_invalid_fallback_owner_is_config_error(world: World, fallback: str) -> None:
    if "+1@" in fallback:  # a user of L001 only: L002 is named
        fallback = world.user("L001", "Alex Frontdesk")["email"]
    with pytest.raises(ConfigError) as exc:
        world.resolve(fallback=fallback)
    msg = str(exc.value)
    assert fallback in msg and "L002" in msg
    if fallback.startswith("nobody"):
        assert "L001" in msg


def test_location_missing_from_locations_yaml(world: World) -> None:
    with pytest.raises(ConfigError, match="L002"):
        resolve_providers(world.export, world.locations(only=["L001"]), clients=world.clients,
                          export_date=PARAMS.export_date)


def test_report_files_have_no_patient_values(world: World, tmp_path: Path) -> None:
    report = world.resolve()
    csv_path, md_path = report.write(tmp_path / "out")
    assert (csv_path.name, md_path.name) == ("providers.csv", "providers.md")
    with csv_path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(report.rows)
    assert {(r["location"], r["prov_id"], r["match"]) for r in rows} == {
        (r.location, r.prov_id, r.match) for r in report.rows}
    md = md_path.read_text(encoding="utf-8")
    assert "Unmatched providers" in md and "DR1" in md and "Randall Cuevas" in md
    assert report.to_dict()["summary"]["unmatched_in_use"] == len(report.unmatched)

    text = csv_path.read_text(encoding="utf-8") + md
    staff = set()
    prov = pd.read_parquet(world.truth / "provider.parquet", columns=["fname", "lname"])
    staff |= {str(v).lower() for v in prov["fname"].tolist() + prov["lname"].tolist()}
    staff |= {w.lower() for users in world.users.values() for u in users for w in u["name"].split()}
    pat = pd.read_parquet(world.truth / "patient.parquet",
                          columns=["fname", "lname", "email", "birthdate", "hphone", "cphone"])
    lowered = text.lower()
    for p in pat.itertuples():
        assert f"{p.fname} {p.lname}".lower() not in lowered
        for name in (p.fname, p.lname):
            if isinstance(name, str) and name and name.lower() not in staff:
                assert not re.search(rf"\b{re.escape(str(name).lower())}\b", lowered), "a patient name leaked"
        for value in (p.email, p.hphone, p.cphone):
            if isinstance(value, str) and value:
                assert value.lower() not in lowered
        if p.birthdate is not None and not pd.isna(p.birthdate):
            assert str(p.birthdate) not in text
