"""pyarrow's CSV reader reads ahead of the parsing by a few blocks, not 32 (``prefetch.ReadAhead``).

Its own background reader queues up to 32 blocks of raw text; parsing is slower than reading, so on a
large file that queue was always full (128 MB at the 4 MB block) and peak RSS grew with the export's
size while the chunks stayed the same. These tests fail without the bound.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import dos2hl.sources.reader as reader_mod
from dos2hl.sources.discover import discover
from dos2hl.sources.prefetch import READ_AHEAD_BLOCKS, ReadAhead
from dos2hl.sources.profile import load_profile
from dos2hl.sources.textstream import Utf8Stream
from dos2hl.storage import LocalStore
from tests.sources.test_reader import EXPORT_DATE, LOCATION, PAT_HEADER, write_export

BLOCK = 2048


def _patients(n: int) -> bytes:
    rows = "".join(f"{i},L001,Lname{i},Fname{i},01/02/1980,(413) 555-{i % 10000:04d},,01103,,0.00\r\n"
                   for i in range(1, n + 1))
    return PAT_HEADER + rows.encode()


def test_pyarrow_reads_only_a_few_blocks_ahead_of_a_slow_consumer(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": _patients(3000)})
    reads = 0
    real_read = Utf8Stream.read

    def counting_read(self: Utf8Stream, size: int = -1) -> bytes:
        nonlocal reads
        reads += 1
        return real_read(self, size)

    gates: list[ReadAhead] = []

    class Spy(ReadAhead):
        def __init__(self) -> None:
            super().__init__()
            gates.append(self)

    monkeypatch.setattr(Utf8Stream, "read", counting_read)
    monkeypatch.setattr(reader_mod, "ReadAhead", Spy)
    reader = reader_mod.ExportReader(discover(LocalStore(root), load_profile("reference")),
                                     export_date=EXPORT_DATE, block_bytes=BLOCK)
    list(reader.iter_table("location"))
    reads = 0
    ahead, chunks, rows = [], 0, 0
    for chunk in reader.iter_table("patient"):
        chunks += 1
        rows += chunk.data.num_rows
        time.sleep(0.005)  # a consumer slower than the reading: pyarrow's thread races ahead if it may
        ahead.append(reads - chunks)
    assert rows == 3000 and reader.stats["PATIENT.CSV"].balanced
    assert chunks > 60  # enough blocks for an unbounded reader to run 32 ahead
    # the reader's bound, plus what is legitimately out: the prefetch queue (2), the block in the
    # producer's hand, the one the reader holds back (a file's last record may be cut) and the header's read
    assert max(ahead) <= READ_AHEAD_BLOCKS + 5, max(ahead)
    patient_gate = gates[-1]
    assert patient_gate.most_ahead <= READ_AHEAD_BLOCKS and patient_gate.stalls == 0


def test_a_read_waits_while_the_reader_is_ahead_and_release_ends_every_wait() -> None:
    gate = ReadAhead(blocks=2, wait_s=10)
    gate.admit()
    gate.admit()
    done = threading.Event()

    def third() -> None:
        gate.admit()
        done.set()

    t = threading.Thread(target=third)
    t.start()
    assert not done.wait(0.2)  # two reads not matched by a batch: the third waits
    gate.handed()
    assert done.wait(2) and gate.most_ahead == 2

    fourth = threading.Thread(target=gate.admit)
    fourth.start()
    time.sleep(0.1)
    assert fourth.is_alive()
    gate.release()  # the reading is over: pyarrow's thread must not stay in a read
    fourth.join(2)
    assert not fourth.is_alive() and gate.stalls == 0
    gate.admit()  # released for good
    t.join(2)


def test_a_read_goes_on_after_the_bounded_wait_and_counts_a_stall() -> None:
    gate = ReadAhead(blocks=1, wait_s=0.05)
    gate.admit()
    t0 = time.perf_counter()
    gate.admit()  # no batch came: never stuck, one read per wait
    assert time.perf_counter() - t0 >= 0.04 and gate.stalls == 1 and gate.reads == 2


def test_a_consumer_that_stops_early_leaves_no_reader_thread_behind(tmp_path: Path) -> None:
    root = write_export(tmp_path, {"LOCATION.CSV": LOCATION, "PATIENT.CSV": _patients(2000)})
    reader = reader_mod.ExportReader(discover(LocalStore(root), load_profile("reference")),
                                     export_date=EXPORT_DATE, block_bytes=BLOCK)
    list(reader.iter_table("location"))
    it = reader.iter_table("patient")
    next(it)
    it.close()
    deadline = time.monotonic() + 5
    while any(t.name == "dos2hl-csv" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.name == "dos2hl-csv" for t in threading.enumerate())
