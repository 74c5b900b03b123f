"""Hostile exports against the reader (issue 14, findings 2 and 2b).

Each test builds an export in ``tmp_path`` from the hand-made base (tests/fixtures/hostile/reader/base:
two offices in Alaska and Arizona, 60 patients with ugly values) plus one hostile file, stages it with
the CLI, and checks: the exit code, the identity of every file (records = clean + repaired +
quarantined, each quarantined row with a code and a reason), and that the canary planted in the bad
rows' values reaches no log, error text, manifest, quarantine reason or file name.

Big files (a 40 MB memo, a 2 GB sparse line) are made here, never committed. The sparse tests come
first: ``peak_rss_mib`` is the process's peak, so it is read before the 40 MB memo raises it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from dos2hl.api import quarantined_rows
from dos2hl.cli import app
from dos2hl.sources import reader
from tests.hostile.conftest import CANARY, leaks, peak_rss_mib

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hostile" / "reader"
HEADER = b"NOTE_ID,PAT_ID,NOTE_DT,NOTE_FMT,NOTE_TEXT\r\n"
runner = CliRunner()


def _note(i: int, text: str = "Prophy done, BWX taken") -> bytes:
    return f'{i},{i % 60 + 1:06d},06/{1 + i % 28:02d}/2024,TXT,"{text}\r\nsecond line"\r\n'.encode()


def _export(tmp_path: Path, clinnote: bytes | None = None) -> Path:
    src = tmp_path / "export"
    shutil.copytree(FIXTURES / "base", src)
    if clinnote is not None:
        (src / "CLINNOTE.CSV").write_bytes(clinnote)
    return src


def _stage(src: Path, tmp_path: Path) -> tuple[Result, Path]:
    out = tmp_path / "staged"
    return runner.invoke(app, ["stage", str(src), "--to", str(out), "--export-date", "2024-06-28"]), out


def _manifest(out: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((out / "manifest.json").read_text())


def _accounted(out: Path, file: str) -> dict:  # type: ignore[type-arg]
    """The file's stats, after checking that its counts add up and every quarantined row has a reason."""
    st = _manifest(out)["files"][file]
    assert st["records"] == st["clean"] + st["repaired"] + st["quarantined"]
    rows = [r for r in quarantined_rows(out) if r["file"] == file]
    assert len(rows) == st["quarantined"]
    assert all(r["code"] and r["reason"] and r["line"] for r in rows)
    return st


def _no_canary(out: Path, result: Result, caplog: pytest.LogCaptureFixture) -> None:
    texts = [result.output, caplog.text]
    if (out / "manifest.json").exists():
        texts.append((out / "manifest.json").read_text())
        texts.append("\n".join(str(r["reason"]) for r in quarantined_rows(out)))
    found = leaks(None, *texts)
    found += [f"name {p}" for p in out.rglob("*") if CANARY.casefold() in p.name.casefold()]
    assert found == []


# -- a 2 GB sparse file: bounded memory, a size bound on one record -------------------------------------
def test_2gb_sparse_last_line_is_quarantined_unread_and_the_rows_before_it_staged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = b"".join(f"{i},{i % 60 + 1:06d},06/03/2024,TXT,note number {i} with some padding text\r\n".encode()
                    for i in range(1, 1501))  # > 64 KB: the format is sniffed from clean rows
    src = _export(tmp_path, HEADER + rows + f'1501,000003,06/03/2024,TXT,"{CANARY} '.encode())
    subprocess.run(["truncate", "-s", "2G", str(src / "CLINNOTE.CSV")],
                   check=True)  # sparse: NULs, no newline
    result, out = _stage(src, tmp_path)
    peak = peak_rss_mib()
    print(f"peak RSS after staging a 2 GB single-line file: {peak:.0f} MiB")
    assert result.exit_code == 0, result.output
    st = _accounted(out, "CLINNOTE.CSV")
    assert (st["records"], st["clean"] + st["repaired"], st["quarantined"]) == (1501, 1500, 1)
    assert st["bytes"] == 2 << 30  # read to its end (hashed), never held
    [bad] = [r for r in quarantined_rows(out) if r["file"] == "CLINNOTE.CSV"]
    assert bad["code"] == "CSV5" and bad["line"] == 1502 and "64 MiB" in str(bad["reason"])
    assert peak < 1024, f"peak RSS {peak:.0f} MiB: the 2 GB line was held in memory"
    _no_canary(out, result, caplog)


def test_2gb_sparse_file_without_text_is_refused_with_a_reason_and_the_others_read(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    src = _export(tmp_path)
    (src / "CLINNOTE.CSV").write_bytes(b"")
    subprocess.run(["truncate", "-s", "2G", str(src / "CLINNOTE.CSV")], check=True)
    result, out = _stage(src, tmp_path)
    assert result.exit_code == 1, result.output
    assert "CLINNOTE.CSV looks binary" in result.output
    m = _manifest(out)
    assert m["balanced"] is False and m["files"]["CLINNOTE.CSV"]["balanced"] is False
    assert _accounted(out, "PATIENT.CSV")["records"] == 60  # the other files are read
    assert peak_rss_mib() < 1024


# -- finding 2: a 40 MB memo with line breaks in the middle of a table ------------------------------------
def test_40mb_memo_with_line_breaks_mid_table_loses_no_row_after_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    line = f"{CANARY} reports pain on biting, cold sensitive; plan: crown\r\n".encode()
    memo = b'50,000007,06/03/2024,TXT,"' + line * ((40 << 20) // len(line)) + b'"\r\n'
    body = b"".join(_note(i) for i in range(1, 50)) + memo + b"".join(_note(i) for i in range(51, 101))
    src = _export(tmp_path, HEADER + body)
    result, out = _stage(src, tmp_path)
    assert result.exit_code == 0, result.output
    st = _accounted(out, "CLINNOTE.CSV")
    assert (st["records"], st["quarantined"], st["error"]) == (100, 0, None)  # main: 49 records, exit 0
    assert _manifest(out)["tables"]["clinnote"]["rows"] == 100
    assert st["lines"] == 1 + 49 * 2 + memo.count(b"\n") + 50 * 2
    _no_canary(out, result, caplog)


def test_record_over_the_limit_mid_table_is_quarantined_and_reading_resumes_after_it(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from dos2hl.sources import quarantine

    for module in (reader, quarantine):  # the 64 MiB bound, scaled to a fast test (read and refused alike)
        monkeypatch.setattr(module, "MAX_RECORD_BYTES", 4 << 20)
    memo = f'20,000007,06/03/2024,TXT,"{CANARY} '.encode() + b"x, y\r\n" * (1 << 20) + b'"\r\n'
    body = b"".join(_note(i) for i in range(1, 20)) + memo + b"".join(_note(i) for i in range(21, 41))
    result, out = _stage(_export(tmp_path, HEADER + body), tmp_path)
    assert result.exit_code == 0, result.output
    st = _accounted(out, "CLINNOTE.CSV")
    assert (st["records"], st["clean"] + st["repaired"], st["quarantined"]) == (40, 39, 1)
    [bad] = quarantined_rows(out, table="clinnote")
    assert bad["code"] == "CSV5" and bad["line"] == 1 + 19 * 2 + 1 and bad["record"] == 20
    staged_notes = _manifest(out)["tables"]["clinnote"]["rows"]
    assert staged_notes == 39  # every row after the bad one is read
    _no_canary(out, result, caplog)


def test_a_read_error_makes_stage_fail_naming_file_and_line(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever stops pyarrow mid-file: the identity is not balanced and stage exits non-zero."""
    import pyarrow as pa

    real = reader.ExportReader._csv

    def failing(self, stream, fmt, colnames, tracker, block, skip_rows):  # type: ignore[no-untyped-def]
        batches = real(self, stream, fmt, colnames, tracker, 256, skip_rows)  # small blocks: several batches
        for n, b in enumerate(batches):
            if n == 3:
                raise pa.ArrowInvalid(f"CSV parse error: unexpected text near '{CANARY}'")
            yield b

    monkeypatch.setattr(reader.ExportReader, "_csv", failing)
    body = b"".join(_note(i) for i in range(1, 41))
    result, out = _stage(_export(tmp_path, HEADER + body), tmp_path)
    assert result.exit_code == 1
    m = _manifest(out)
    st = m["files"]["CLINNOTE.CSV"]
    assert m["balanced"] is False and st["balanced"] is False and st["records"] < 40
    assert "CLINNOTE.CSV: reading stopped at line" in st["error"] and st["error"] in result.output
    _no_canary(out, result, caplog)


# -- truncated, NUL, UTF-16 ----------------------------------------------------------------------------------
def test_truncated_last_line_inside_an_unclosed_quote_is_quarantined(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    body = b"".join(_note(i) for i in range(1,
                                            31)) + f'31,000004,06/03/2024,TXT,"{CANARY} cut\r\nsho'.encode()
    result, out = _stage(_export(tmp_path, HEADER + body), tmp_path)
    assert result.exit_code == 0, result.output
    st = _accounted(out, "CLINNOTE.CSV")
    assert (st["records"], st["quarantined"]) == (31, 1)  # main: 31 staged, the cut note among them
    [bad] = quarantined_rows(out, table="clinnote")
    assert bad["code"] == "CSV2" and bad["line"] == 62 and "ends inside a quoted value" in str(bad["reason"])
    assert any("ends inside a quoted value (line 62)" in w for w in st["warnings"])
    _no_canary(out, result, caplog)


def test_a_file_without_a_final_line_break_is_not_cut(tmp_path: Path) -> None:
    body = b"".join(_note(i) for i in range(1, 31)) + b'31,000004,06/03/2024,TXT,"closed"'
    result, out = _stage(_export(tmp_path, HEADER + body), tmp_path)
    assert result.exit_code == 0, result.output
    st = _accounted(out, "CLINNOTE.CSV")
    assert (st["records"], st["quarantined"], st["warnings"]) == (31, 0, [])


def test_nul_bytes_in_a_row_are_removed_and_flagged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = f'15,000004,06/03/2024,TXT,"{CANARY}\x00\x00 pain\x00"\r\n'.encode()
    body = b"".join(_note(i) for i in range(1, 15)) + bad + b"".join(_note(i) for i in range(16, 31))
    result, out = _stage(_export(tmp_path, HEADER + body), tmp_path)
    assert result.exit_code == 0, result.output
    st = _accounted(out, "CLINNOTE.CSV")
    assert (st["records"], st["quarantined"], st["findings"]["CSV4"]) == (30, 0, 1)
    import pyarrow.parquet as pq

    notes = pq.read_table(out / "clinnote").to_pydict()
    assert len(notes["note_id"]) == 30
    # the NULs removed, nothing else
    assert notes["note_text"][notes["note_id"].index(15)] == f"{CANARY} pain"
    _no_canary(out, result, caplog)


def test_utf16_file_with_a_lone_surrogate_is_read_not_refused(tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    rows = HEADER.decode() + "".join(_note(i).decode() for i in range(1, 10))
    bad = (f'10,000004,06/03/2024,TXT,"{CANARY}'.encode("utf-16-le") + b"\x00\xd8"  # lone high surrogate
           + ' note"\r\n'.encode("utf-16-le"))
    rest = "".join(_note(i).decode() for i in range(11, 31)).encode("utf-16-le")
    src = _export(tmp_path, b"\xff\xfe" + rows.encode("utf-16-le") + bad + rest)
    result, out = _stage(src, tmp_path)
    assert result.exit_code == 0, result.output  # main: the whole file refused as "not valid utf-16"
    st = _accounted(out, "CLINNOTE.CSV")
    assert (st["records"], st["quarantined"], st["error"]) == (30, 0, None)
    assert any("1 utf-16 code units" in w and "U+FFFD" in w for w in st["warnings"])
    _no_canary(out, result, caplog)


# -- finding 2b: delimiter sniffing, and a file that is mostly unreadable ------------------------------------
def test_semicolons_in_a_note_do_not_make_semicolon_the_delimiter(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    src = _export(tmp_path)
    shutil.copy(FIXTURES / "semicolon_notes" / "CLINNOTE.CSV", src / "CLINNOTE.CSV")
    result, out = _stage(src, tmp_path)
    assert result.exit_code == 0, result.output
    st = _accounted(out, "CLINNOTE.CSV")
    assert st["format"]["delimiter"] == "," and st["columns"][:2] == ["NOTE_ID", "PAT_ID"]
    assert (st["records"], st["quarantined"], st["banner_lines"]) == (60, 0, 1)
    _no_canary(out, result, caplog)  # main: the note's first line became the header, in the manifest


def test_a_file_with_most_rows_unreadable_stops_the_run_naming_the_file(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # A tool that wrote the note unquoted: every comma in it is a field break.
    body = b"".join(f"{i},{i % 60 + 1:06d},06/03/2024,TXT,{CANARY} pain, swelling, tender\r\n".encode()
                    for i in range(1, 41)) + _note(41)
    result, out = _stage(_export(tmp_path, HEADER + body), tmp_path)
    assert result.exit_code == 1, result.output
    st = _manifest(out)["files"]["CLINNOTE.CSV"]
    assert st["balanced"] is False
    assert st["error"].startswith("CLINNOTE.CSV: 40 of 41 records could not be read (over 50%)")
    assert st["error"] in result.output
    _no_canary(out, result, caplog)


def test_migrate_refuses_a_staging_that_is_not_balanced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    from dos2hl.errors import SourceError
    from dos2hl.phi import create_key_file
    from dos2hl.pipeline import MigrateParams, migrate
    from tests.migrate.conftest import EXPORT_DATE, make_world

    monkeypatch.setenv("DOS2HL_STORAGE", str(tmp_path / "runs"))
    monkeypatch.setenv("DOS2HL_PHI_KEY_FILE", str(create_key_file(tmp_path / "keys" / "phi.key")))
    w = make_world(tmp_path, monkeypatch, export=FIXTURES / "base", provisioned=False)
    try:
        (w.export / "CLINNOTE.CSV").write_bytes(HEADER + b"".join(
            f"{i},000001,06/03/2024,TXT,{CANARY} pain, swelling, tender\r\n".encode() for i in range(1, 31)))
        opts = MigrateParams(source=str(w.export), mapping=str(w.mapping), locations=str(w.locations),
                             sample=0,
                              export_date=EXPORT_DATE, workers=2, run_id="hostile-reader")
        for _attempt in range(2):  # a retry of the same run (its manifest exists) is refused too
            with pytest.raises(SourceError) as exc:
                migrate(opts, client_factory=w.factory)
            assert "is not balanced, so nothing is migrated" in str(exc.value)
            assert "CLINNOTE.CSV: 30 of 30 records could not be read" in str(exc.value)
            assert w.sent == []  # not one request: nothing read from or written to HighLevel
        assert leaks(None, str(exc.value), caplog.text) == []
    finally:
        w.stop()
