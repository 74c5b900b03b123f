"""Issue 14 finding 1 and 4(c): a DOCUMENT row is input, never a path to follow.

A generated practice whose DOCUMENT rows are rewritten into every escape we know (``..`` in the folder
and in the file name, a POSIX absolute path, drive letters, a UNC name, a symlinked file, a symlinked
folder, a FIFO, a sparse file over the cap, a file name with no dot holding the canary) is migrated
against the sandbox. Nothing outside IMAGES reaches HighLevel, each refused row is one excluded.csv row
with its reason (ids only), the identity adds up, and the canary is in no log, report, ledger, media
name or journal line.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.conftest import CANARY, leaks
from tests.migrate.conftest import EXPORT_DATE, make_world

SECRET = b"OUTSIDE-THE-EXPORT " + CANARY.encode() + b"\n"
NO_DOT = "Scan " + CANARY  # a file name without an extension, holding a patient's name


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="cp1252") as fh:
        r = csv.DictReader(fh)
        return list(r.fieldnames or []), list(r)


def _write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="cp1252") as fh:
        w = csv.DictWriter(fh, header, lineterminator="\r\n")
        w.writeheader()
        w.writerows(rows)


def _plant(export: Path, outside: Path) -> dict[str, str]:
    """Rewrite the first documents of one active patient into hostile rows; doc id -> the expected reason."""
    images = export / "IMAGES"
    header, rows = _rows(export / "DOCUMENT.CSV")
    _ph, patients = _rows(export / "PATIENT.CSV")
    active = {p["PAT_ID"] for p in patients if p.get("DELETED_FLG") == "N" and p.get("PAT_STAT") == "A"}
    mine = [r for r in rows if r["PAT_ID"] in active and r["DELETED_FLG"] == "N" and not r["EMBED_B64"]
            and r["FILE_PATH"].startswith("\\\\DOSSRV\\DOSIMG\\")]
    folder_win = mine[0]["FILE_PATH"]
    folder = images.joinpath(*[p for p in folder_win.split("\\")[4:] if p])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "link.pdf").symlink_to(outside / "secret.txt")
    (images / "linkdir").symlink_to(outside, target_is_directory=True)
    (folder / "devzero.pdf").symlink_to("/dev/zero")
    os.mkfifo(folder / "pipe.pdf")
    with (folder / "huge.pdf").open("wb") as fh:  # sparse: 26 MB on paper, no disk
        fh.truncate(26 * 1024 * 1024)
    (folder / NO_DOT).write_bytes(b"%PDF-1.4 a scanned consent\n")
    unc = "\\\\DOSSRV\\DOSIMG\\"
    cases = [  # (FILE_PATH, FILE_NAME, FILE_EXT, reason starts with)
        (unc + "..\\..\\..\\outside\\", "secret.txt", "txt", "unsafe file path: it climbs"),
        ("", "../../../outside/secret.txt", "txt", "unsafe file name"),
        (str(outside) + "/", "secret.txt", "txt", "unsafe file path: an absolute path"),
        ("", "C:\\outside\\secret.txt", "txt", "unsafe file name"),
        ("D:\\DentOSoft\\Images\\C:\\outside\\", "secret.txt", "txt", "unsafe file path: a drive letter"),
        ("", "\\\\EVIL\\share\\secret.txt", "txt", "unsafe file name"),
        ("/proc/self/", "environ", "txt", "unsafe file path: an absolute path"),
        (folder_win, "link.pdf", "pdf", "unsafe file: a symbolic link"),
        (unc + "linkdir\\", "secret.txt", "txt", "unsafe file: a symbolic link"),
        (folder_win, "devzero.pdf", "pdf", "unsafe file: a symbolic link"),
        (folder_win, "pipe.pdf", "pdf", "unsafe file: a FIFO"),
        (folder_win, "huge.pdf", "pdf", "26.0 MB is over HighLevel's 25 MB upload limit"),
    ]
    expected: dict[str, str] = {}
    for row, (path, name, ext, why) in zip(mine, cases, strict=False):
        row.update(FILE_PATH=path, FILE_NAME=name, FILE_EXT=ext, MIME_TYPE="")
        expected[row["DOC_ID"]] = why
    assert len(expected) == len(cases), "the generated patient has too few documents"
    nodot = mine[len(cases)]
    nodot.update(FILE_PATH=folder_win, FILE_NAME=NO_DOT, FILE_EXT="", MIME_TYPE=CANARY + "/pdf")
    expected[nodot["DOC_ID"]] = "uploaded"
    _write_rows(export / "DOCUMENT.CSV", header, rows)
    return expected


def _plant_deep_note(export: Path) -> int:
    """One clinical note's HTML nested 300 levels deep (finding 9): migrated whole as plain text, reported."""
    header, rows = _rows(export / "CLINNOTE.CSV")
    _ph, patients = _rows(export / "PATIENT.CSV")
    active = {p["PAT_ID"] for p in patients if p.get("DELETED_FLG") == "N" and p.get("PAT_STAT") == "A"}
    amended = {r["AMENDS_NOTE_ID"] for r in rows if r["AMENDS_NOTE_ID"]}
    row = next(r for r in rows if r["PAT_ID"] in active and r["NOTE_ID"] not in amended
               and r["VOID_FLG"] == "N"
               and not r["AMENDS_NOTE_ID"])
    row.update(NOTE_FMT="HTML",
               NOTE_TEXT="<p>Exam.</p>" + "<div>" * 300 + f"Deep finding {CANARY}." + "</div>" * 300
               + "<p>Recall in six months.</p>")
    _write_rows(export / "CLINNOTE.CSV", header, rows)
    return int(row["NOTE_ID"])


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate

    mp = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("paths")
    mp.setenv("DOS2HL_STORAGE", str(root / "runs"))
    mp.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(root / "keys" / "phi.key")))
    w = make_world(root, mp, patients=20, crm=True)
    outside = root / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    expected = _plant(w.export, outside)
    deep_note = _plant_deep_note(w.export)
    handler = _Capture()
    logging.getLogger().addHandler(handler)
    old = logging.getLogger().level
    logging.getLogger().setLevel(logging.DEBUG)
    error = ""
    try:
        rep = migrate(MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                                     sample=0, executor="threads", workers=1, export_date=EXPORT_DATE),
                      approve=lambda r: True, client_factory=w.factory)
    except Exception as exc:  # noqa: BLE001 - kept for the leak check, then re-raised by the test
        error, rep = f"{type(exc).__name__}: {exc}", None
    finally:
        logging.getLogger().removeHandler(handler)
        logging.getLogger().setLevel(old)
    w.deep_note = deep_note  # type: ignore[attr-defined]
    yield w, rep, root / "runs" / rep["run_id"] if rep else None, expected, "\n".join(handler.lines), error
    w.stop()
    mp.undo()


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_a_note_nested_too_deep_is_migrated_whole_and_the_report_says_so(hostile: Any) -> None:
    from dos2hl.phi import load_sealer
    from dos2hl.planning.keys import stable_key
    from dos2hl.settings import Dos2hlSettings

    w, rep, run, _expected, _log, error = hostile
    assert not error and rep is not None, error
    plain = rep["notices"]["notes_as_plain_text"]
    assert plain == {"count": 1, "note_ids": [w.deep_note]}
    assert "## Clinical notes migrated as plain text" in (run / "report" / "report.md").read_text()
    sealer = load_sealer(Dos2hlSettings().phi_key_file)
    texts = [sealer.open(r["properties"]["note_text"], "custom_objects.clinical_notes.note_text",
                         stable_key(loc, "clinical_note", str(r["properties"]["source_id"])))
             for loc in w.loc_ids for r in w.dump(loc)["objects"].get("custom_objects.clinical_notes", [])
             if r["properties"].get("note_text")]
    (text,) = [t for t in texts if "Deep finding" in t]
    assert "Exam." in text and f"Deep finding {CANARY}." in text and "Recall in six months." in text


def _excluded(run: Path) -> dict[str, str]:
    rows = csv.DictReader(io.StringIO((run / "report" / "excluded.csv").read_text()))
    return {r["source_id"]: r["reason"] for r in rows if r["object"] == "document"}


def test_nothing_outside_images_reaches_highlevel(hostile: Any) -> None:
    w, rep, _run, expected, _log, error = hostile
    assert not error and rep is not None, error
    uploaded = [f for loc in w.loc_ids for f in w.dump(loc)["files"]]
    assert uploaded, "the practice's ordinary documents still go"
    assert not leaks(w.state), "the sandbox (media store, journal) holds the secret or the name"
    journal = (w.state / "journal.jsonl").read_text()
    assert CANARY.casefold() not in journal.casefold()
    sizes = {f["size"] for f in uploaded}
    assert len(SECRET) not in sizes and 26 * 1024 * 1024 not in sizes
    nodot = next(d for d, why in expected.items() if why == "uploaded")
    mine = [f for f in uploaded if f["name"].endswith(f"-{nodot}.bin")]
    assert len(mine) == 1, "the no-dot file goes, named by ids with no extension taken from its name"


def test_each_refused_row_is_excluded_with_its_reason_and_the_identity_adds_up(hostile: Any) -> None:
    _w, rep, run, expected, _log, error = hostile
    assert not error and rep is not None, error
    excluded = _excluded(run)
    for did, why in expected.items():
        if why == "uploaded":
            assert did not in excluded
        else:
            assert excluded.get(did, "").startswith(why), (did, excluded.get(did))
    for loc, data in rep["locations"].items():
        o = data["objects"]["document"]
        assert o["source"] - o["quarantined"] == o["written"] + o["excluded"] + o["failed"] + o["held"], loc
        assert o["failed"] == 0, loc
    assert sum(d["objects"]["document"]["excluded"] for d in rep["locations"].values()) == len(excluded)


def test_the_canary_is_in_no_log_report_ledger_or_exception(hostile: Any) -> None:
    _w, rep, run, _expected, log, error = hostile
    assert not error and rep is not None, error
    assert not leaks(None, log, json.dumps(rep, default=str), error)
    for part in ("report", "ledger"):
        assert (run / part).exists(), part
        assert not leaks(run / part), part
    assert "outside" not in (run / "report" / "excluded.csv").read_text()  # no path, ids only


# ---- the resolver on its own -------------------------------------------------------------------------


@pytest.mark.parametrize(("folder", "name", "key"), [
    ("\\\\DOSSRV\\DOSIMG\\S\\SMITHJ000123\\", "BW_01.jpg", "IMAGES/S/SMITHJ000123/BW_01.jpg"),
    ("D:\\DentOSoft\\Images\\000123\\", "scan.pdf", "IMAGES/000123/scan.pdf"),
    ("D:\\DentOSoft\\Images\\.\\000123\\", "scan.pdf", "IMAGES/000123/scan.pdf"),
    ("", "scan.pdf", "IMAGES/scan.pdf"),
    ("\\\\OTHER\\share\\x\\", "a.jpg", "IMAGES/OTHER/share/x/a.jpg"),  # another share: stays below IMAGES
    (None, None, None),
])
def test_document_keys_stay_below_images(folder: str | None, name: str | None, key: str | None) -> None:
    from dos2hl.sources.docfiles import document_key

    assert document_key(folder, name) == key


@pytest.mark.parametrize(("folder", "name"), [
    ("\\\\DOSSRV\\DOSIMG\\..\\..\\", "passwd"), ("", ".."), ("", "../x"), ("", "..\\x"), ("/etc/", "passwd"),
    ("\\Windows\\", "win.ini"), ("", "C:\\x.txt"), ("", "C:x.txt"), ("D:\\Images\\E:\\", "x"), ("C:x\\", "y"),
    ("", "a.jpg:stream"), ("", "a\x00.jpg"), ("D:\\Images\\a\x01b\\", "x.jpg"), ("", "\\\\srv\\share\\x"),
])
def test_escapes_are_refused_with_a_reason_that_names_nothing(folder: str, name: str) -> None:
    from dos2hl.sources.docfiles import RefusedDocument, document_key

    with pytest.raises(RefusedDocument) as e:
        document_key(folder, name)
    assert e.value.reason.startswith("unsafe file")
    assert len(name) < 3 or name not in str(e.value)
    assert len(folder) < 3 or folder not in str(e.value)


def test_a_file_swapped_for_a_link_after_planning_is_refused_at_read_time(tmp_path: Path) -> None:
    from dos2hl.sources.docfiles import RefusedDocument, document_size, read_document
    from dos2hl.storage import LocalStore

    (tmp_path / "secret").write_bytes(SECRET)
    f = tmp_path / "export" / "IMAGES" / "A" / "x.pdf"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"%PDF")
    store = LocalStore(tmp_path / "export")
    assert document_size(store, "IMAGES/A/x.pdf") == 4
    f.unlink()
    f.symlink_to(tmp_path / "secret")
    with pytest.raises(RefusedDocument, match="symbolic link"):
        read_document(store, "IMAGES/A/x.pdf")
    f.unlink()
    assert document_size(store, "IMAGES/A/x.pdf") is None
    with pytest.raises(FileNotFoundError) as e:
        read_document(store, "IMAGES/A/x.pdf")
    assert "x.pdf" not in str(e.value)


def test_images_itself_a_link_is_refused(tmp_path: Path) -> None:
    from dos2hl.sources.docfiles import RefusedDocument, document_size
    from dos2hl.storage import LocalStore

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "passwd").write_bytes(SECRET)
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "IMAGES").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(RefusedDocument, match="symbolic link"):
        document_size(LocalStore(tmp_path / "export"), "IMAGES/passwd")


def test_a_read_is_capped_even_when_the_file_grows(tmp_path: Path) -> None:
    from dos2hl.sources.docfiles import TooLarge, read_document
    from dos2hl.storage import LocalStore

    f = tmp_path / "IMAGES" / "big.pdf"
    f.parent.mkdir()
    f.write_bytes(b"x" * 101)
    with pytest.raises(TooLarge):
        read_document(LocalStore(tmp_path), "IMAGES/big.pdf", cap=100)
    assert read_document(LocalStore(tmp_path), "IMAGES/big.pdf", cap=101) == b"x" * 101


class _S3Like:
    """An object store: records what it was asked (no network)."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects, self.asked = objects, []  # type: ignore[var-annotated]

    def exists(self, key: str) -> bool:
        self.asked.append(key)
        return key in self.objects

    def size(self, key: str) -> int:
        return len(self.objects[key])

    def read_bytes(self, key: str, *, length: int | None = None) -> bytes:
        self.asked.append(key)
        return self.objects[key][:length]


def test_object_store_keys_outside_the_prefix_are_never_asked_for() -> None:
    from dos2hl.sources.docfiles import RefusedDocument, TooLarge, document_size, read_document

    s3 = _S3Like({"IMAGES/a/x.pdf": b"%PDF", "IMAGES/big.pdf": b"y" * 11})
    for bad in ("IMAGES/../../other-practice/x.pdf", "/IMAGES/x", "IMAGES//x", "etc/passwd", "IMAGES/./x"):
        with pytest.raises(RefusedDocument):
            document_size(s3, bad)
        with pytest.raises(RefusedDocument):
            read_document(s3, bad)
    assert s3.asked == []
    assert document_size(s3, "IMAGES/a/x.pdf") == 4 and read_document(s3, "IMAGES/a/x.pdf") == b"%PDF"
    with pytest.raises(TooLarge):
        read_document(s3, "IMAGES/big.pdf", cap=10)


def test_the_audit_counts_links_and_fifos_under_images_without_following_them(tmp_path: Path) -> None:
    from dos2hl.audit import _document_sizes
    from dos2hl.sources.discover import Export
    from dos2hl.storage import LocalStore

    images = tmp_path / "IMAGES" / "A"
    images.mkdir(parents=True)
    (images / "ok.pdf").write_bytes(b"%PDF")
    (images / "dangling.pdf").symlink_to(tmp_path / "gone")
    (images / "zero.pdf").symlink_to("/dev/zero")
    os.mkfifo(images / "pipe.pdf")
    keys = [f"IMAGES/A/{n}" for n in ("ok.pdf", "dangling.pdf", "zero.pdf", "pipe.pdf")]
    index = _document_sizes(Export(LocalStore(tmp_path), None, {}, [], keys))  # type: ignore[arg-type]
    assert index.unsafe == 3 and index.to_dict() == {"IMAGES/A/ok.pdf": 4}  # unsafe: counted, left out


def test_an_upload_name_carries_only_a_whitelisted_extension() -> None:
    from dos2hl.planning.crm import upload_ext

    assert upload_ext(None, "BW_01.JPG") == "jpg"
    assert upload_ext("PDF", "whatever") == "pdf"
    assert upload_ext(None, NO_DOT) == "bin"
    assert upload_ext(None, f"x.{CANARY}") == "bin"
    assert upload_ext(CANARY, "x.pdf") == "bin"
    assert upload_ext(None, ".hidden") == "bin"
    assert upload_ext("dxr", "x") == "dxr"  # proprietary: still recognised, to be excluded by name


def test_the_cli_and_flows_keep_http_request_urls_out_of_info_logs() -> None:
    import importlib

    from dos2hl import cli

    loggers = [logging.getLogger(n) for n in ("httpx", "httpcore")]
    before = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.NOTSET)
        cli._setup_logging()
        assert not any(lg.isEnabledFor(logging.INFO) for lg in loggers)
        for lg in loggers:
            lg.setLevel(logging.NOTSET)
        importlib.reload(importlib.import_module("flows"))
        assert [lg.level for lg in loggers] == [logging.WARNING] * 2
        for lg in loggers:
            lg.setLevel(logging.NOTSET)
        importlib.reload(importlib.import_module("tasks"))
        assert [lg.level for lg in loggers] == [logging.WARNING] * 2
    finally:
        for lg, level in zip(loggers, before, strict=True):
            lg.setLevel(level)
