"""Issue 14, findings 5, 6 and 8: durable and private.

* 5: an update's before-image is sealed and durable in the ledger *before* the update is sent: a crash
  right after the PUT still leaves it, and rollback puts the record back; no plain value in the ledger.
* 6: every atomic write fsyncs the file and its folder; a torn ledger file is named and skipped, and
  resume, retry, report and rollback go on (a re-run adopts what the file recorded: nothing created twice).
* 8: everything the run writes is 0600 in 0700 folders, the sandbox's SQLite too, whatever the umask.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hostile.conftest import CANARY, leaks
from tests.migrate.conftest import EXPORT_DATE, World, make_world


@pytest.fixture()
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    from dos2hl.phi import create_key_file

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    old = os.umask(0o022)  # the usual umask: what made run files 0644
    w = make_world(tmp_path, monkeypatch, patients=20)
    yield w
    w.stop()
    os.umask(old)


def _opts(w: World, **kw: Any) -> Any:
    from dos2hl.params import MigrateParams

    base = {"source": str(w.export), "mapping": str(w.mapping), "locations": str(w.locations),
            "export_date": EXPORT_DATE, "sample": 0, "workers": 1}
    return MigrateParams(**{**base, **kw})


def _modes(root: Path) -> list[str]:
    """Every file not 0600 and every folder not 0700 under ``root`` (relative paths and modes)."""
    bad = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            p = Path(dirpath) / name
            if stat.S_IMODE(p.stat().st_mode) != 0o700:
                bad.append(f"{p.relative_to(root)}/ {stat.S_IMODE(p.stat().st_mode):04o}")
        for name in filenames:
            p = Path(dirpath) / name
            if stat.S_IMODE(p.lstat().st_mode) != 0o600:
                bad.append(f"{p.relative_to(root)} {stat.S_IMODE(p.lstat().st_mode):04o}")
    return bad


# ---- 8: file permissions ----------------------------------------------------------------------------------
def test_local_storage_writes_0600_files_in_0700_folders_whatever_the_umask(tmp_path: Path) -> None:
    from dos2hl.storage import LocalStore

    old = os.umask(0)
    try:
        store = LocalStore(tmp_path / "runs" / "r1")
        store.write_bytes("staged/patient/shard=000.parquet", b"x")
        with store.writer("report/report.md") as fh:
            fh.write(b"y")
        spool = tmp_path / "spool.parquet"
        spool.write_bytes(b"z")
        spool.chmod(0o666)
        store.put_file("staged/appt/shard=000.parquet", spool)  # a file another library made
    finally:
        os.umask(old)
    assert _modes(tmp_path / "runs") == []


def test_a_migration_leaves_only_private_files_and_the_sandbox_database_too(world: World) -> None:
    from dos2hl.pipeline import migrate
    from dos2hl.providers import ProviderReport

    out = migrate(_opts(world, run_id="r-modes"), client_factory=world.factory)
    assert out["status"] == "completed", out.get("reconciliation")
    runs = world.root / "runs"
    assert (runs / "r-modes" / "staged").is_dir() and (runs / "r-modes" / "ledger").is_dir()
    assert _modes(runs) == []  # staged Parquet, ledger, inventory, reports, usage: all of it
    ProviderReport(rows=[]).write(world.root / "providers")
    assert _modes(world.root / "providers") == []
    db = [p for p in world.state.iterdir() if p.suffix in (".sqlite",
                                                           ".db") or "-wal" in p.name or "-shm" in p.name]
    assert db and all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in db), [(p.name, oct(p.stat().st_mode))
                                                                              for p in db]
    assert stat.S_IMODE(world.state.stat().st_mode) == 0o700


# ---- 6: fsync around the atomic rename ------------------------------------------------------------------
def test_an_atomic_write_fsyncs_the_file_then_its_folder(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.storage import LocalStore

    seen: list[tuple[str, bool]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd: int) -> None:
        seen.append(("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file", True))
        real_fsync(fd)

    def replace(a: Any, b: Any) -> None:
        seen.append(("rename", True))
        real_replace(a, b)

    store = LocalStore(tmp_path / "run")
    store.write_bytes("ledger/L001/patient/w-00001.parquet", b"first")  # folders made (and fsynced)
    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.write_bytes("ledger/L001/patient/w-00002.parquet", b"second")
    assert [s for s, _ in seen] == ["fsync-file", "rename", "fsync-dir"]


# ---- 6: a torn ledger file ---------------------------------------------------------------------------------
def _tear(run: Path, obj: str = "patient") -> str:
    files = sorted((run / "ledger").glob(f"*/{obj}/*.parquet"), key=lambda p: p.stat().st_size)
    victim = files[-1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # what a power loss on a lying disk leaves
    return victim.relative_to(run).as_posix()


def test_a_torn_ledger_file_is_named_skipped_and_nothing_is_created_twice(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from dos2hl.execution.report import pending
    from dos2hl.pipeline import migrate
    from dos2hl.writing.rollback import rollback

    w = world
    first = migrate(_opts(w, run_id="r-torn"), client_factory=w.factory)
    assert first["status"] == "completed"
    run = w.root / "runs" / "r-torn"
    torn = _tear(run)
    contacts_before = sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids)
    assert pending(str(run)) == []  # report's dead letters: no crash
    w.sent.clear()
    again = migrate(_opts(w, run_id="r-torn"), client_factory=w.factory)  # resume the same run
    assert again["ledger_unreadable"] == [torn]
    assert torn in Path(again["report"]).read_text()  # the report names the file (its name is ids only)
    assert again["status"] == "completed"
    creates = [s for s in w.sent if s[0] == "POST" and s[1] in ("/contacts/", "/contacts")]
    assert creates == []  # its contacts were found in HighLevel by key and adopted, never re-created
    assert sum(len(w.dump(loc)["contacts"]) for loc in w.loc_ids) == contacts_before
    retried = migrate(_opts(w, run_id="r-torn", source=""), client_factory=w.factory)  # dos2hl retry
    assert retried["ledger_unreadable"] == [torn]
    assert torn in caplog.text
    back = rollback(str(run), "r-torn", w.factory)
    assert back["unreadable_ledger_files"] == [torn] and back["status"] == "incomplete"


# ---- 5: before-images sealed and durable before the PUT ----------------------------------------------------
class Crash(BaseException):
    """The process dies: no handler in the code under test catches a BaseException."""


class CrashAfterPut(httpx.BaseTransport):
    """Forwards every request; after forwarding the first PUT of a contact, the process 'dies'."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "PUT" and request.url.path.startswith("/contacts/"):
            response.read()
            raise Crash()
        return response


def _edit(path: Path, fn: Any) -> None:
    text = path.read_text(encoding="latin-1")
    rows = fn(list(csv.reader(io.StringIO(text))))
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n" if "\r\n" in text else "\n").writerows(rows)
    path.write_text(out.getvalue(), encoding="latin-1")


def test_a_crash_right_after_the_put_leaves_a_sealed_before_image_that_rollback_restores(
    world: World,
) -> None:
    import shutil

    from dos2hl.execution.delta import run_delta
    from dos2hl.params import DeltaParams
    from dos2hl.pipeline import migrate
    from dos2hl.writing.rollback import rollback

    w = world
    pid: dict[str, str] = {}

    def plant(rows: list[list[str]]) -> list[list[str]]:  # the patient's values as HighLevel will hold them
        h = rows[0]
        pid["id"] = rows[1][h.index("PAT_ID")]
        rows[1][h.index("LNAME")], rows[1][h.index("CITY")] = CANARY, f"{CANARY}ville"
        return rows

    _edit(w.export / "PATIENT.CSV", plant)
    base = migrate(_opts(w, run_id="r-base"), client_factory=w.factory)
    assert base["status"] == "completed"
    contact = next(c for loc in w.loc_ids for c in w.dump(loc)["contacts"]
                   if c.get("city") == f"{CANARY}ville")

    later = w.root / "export2"
    shutil.copytree(w.export, later)

    def moved(rows: list[list[str]]) -> list[list[str]]:
        h = rows[0]
        rows[1][h.index("CITY")] = "Crashtown"
        return rows

    _edit(later / "PATIENT.CSV", moved)

    def crashing(loc: str) -> Any:
        c = w.factory(loc)
        c._http._transport = CrashAfterPut(c._http._transport)
        return c

    with pytest.raises(Crash):
        run_delta(DeltaParams(source=str(later), since_run="r-base", mapping=str(w.mapping),
                               locations=str(w.locations), export_date=EXPORT_DATE, workers=1,
                               run_id="r-delta"),
                  client_factory=crashing)
    now = next(c for loc in w.loc_ids for c in w.dump(loc)["contacts"] if c["id"] == contact["id"])
    assert now["city"] == "Crashtown"  # the PUT landed; the process died before recording it
    run = w.root / "runs" / "r-delta"
    assert leaks(run / "ledger") == []  # the before-image (which holds the canary) is sealed
    from dos2hl.storage import open_store
    from dos2hl.writing.ledger import read_ledger

    rows = read_ledger(open_store(str(run))).to_pylist()
    kept = [r for r in rows if r["op"] == "update" and r["outcome"] == "before-image"]
    assert [r["hl_id"] for r in kept] == [contact["id"]] and kept[0]["before"].startswith("enc:v2:")
    assert not any(r["op"] == "update" and r["outcome"] == "updated" for r in rows)  # lost in the crash
    out = rollback(str(run), "r-delta", w.factory)
    assert out["restored"] == {"patient": 1}, out
    back = next(c for loc in w.loc_ids for c in w.dump(loc)["contacts"] if c["id"] == contact["id"])
    assert back["city"] == f"{CANARY}ville" and back["lastName"] == contact["lastName"]
    assert rollback(str(run), "r-delta",
                    w.factory)["restored"] == {}  # a second rollback restores nothing again
