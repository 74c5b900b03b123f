"""The audit's row stores spill to disk, and its processes give freed memory back (dos2hl/memory.py).

The semantic checks keep some columns of every patient, claim and insurance payment until the end;
at a 1 M-patient DSO that is about 1 GB, so the stores go to Arrow IPC files in a private temporary
folder and are read back when their check runs. The answers must not change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from dos2hl.audit import _Audit, _document_sizes, _finish, run_audit
from dos2hl.audit import checks as checks_mod
from dos2hl.audit.checks_base import Store, keep


def _piece(file: str, ids: list[int]) -> pa.Table:
    n = len(ids)
    data = pa.table({"pat_id": pa.array(ids, pa.int64()), "email": pa.array([None] * n, pa.string()),
                     "_file": pa.array([file] * n), "_line": pa.array(range(n), pa.int64()),
                     "_record": pa.array(range(n), pa.int64())})
    return keep(data, ["pat_id", "email"])


def test_a_spilled_store_keeps_nothing_in_memory_and_reads_back_the_same(tmp_path: Path) -> None:
    spilled, kept = Store(tmp_path / "s.arrows"), Store()
    for file, ids in (("PATIENT.CSV", [1, 2, 3]), ("PATIENT_2.CSV", [4]), ("PATIENT.CSV", [])):
        spilled.add(_piece(file, ids))  # each piece its own dictionary of file names
        kept.add(_piece(file, ids))
    assert spilled.pieces == [] and spilled.rows == kept.rows == 4
    assert (tmp_path / "s.arrows").stat().st_size > 0
    t = spilled.table()
    assert t is not None and kept.table() is not None
    assert t.to_pylist() == kept.table().to_pylist()  # type: ignore[union-attr]
    assert spilled.table().equals(t)  # type: ignore[union-attr]  # again: the same rows
    assert Store(tmp_path / "empty.arrows").table() is None and not (tmp_path / "empty.arrows").exists()


def _rss_file_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssFile:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no RssFile in /proc/self/status")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="RssFile: Linux's /proc")
def test_going_through_a_spilled_store_batch_by_batch_holds_one_batch_not_the_file(tmp_path: Path) -> None:
    """A memory-mapped spill kept every page it had read in the process's RSS until the map closed: the
    DSO's insurance rows (~400 MB at 1 M patients) were all resident by their last batch."""
    store = Store(tmp_path / "big.arrows")
    payload = "x" * 1000
    for b in range(64):  # 64 batches of 1 MB
        store.add(pa.table({"pat_id": pa.array(range(b * 1000, (b + 1) * 1000), pa.int64()),
                            "text": pa.array([payload] * 1000, pa.string())}))
    size_mb = (tmp_path / "big.arrows").stat().st_size / 2**20
    assert size_mb > 60
    before = _rss_file_mb()
    grown = 0.0
    rows = 0
    for t in store.batches():
        rows += t.num_rows
        assert pc.all(pc.equal(t["text"], payload)).as_py()  # every byte of the batch is read
        grown = max(grown, _rss_file_mb() - before)
    assert rows == 64_000
    assert grown < size_mb / 4, (grown, size_mb)


@pytest.fixture(scope="module")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dos2hl.generate import GenerateParams, generate

    root = tmp_path_factory.mktemp("spill")
    generate(root, GenerateParams(seed=11, patients=150, mess="nasty"))
    return root


def test_the_audit_spills_into_a_private_folder_it_removes_with_the_same_findings(
        practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from dos2hl.api import open_export
    from dos2hl.sources.reader import ExportReader

    export_date = json.loads((practice / "manifest.json").read_text())["parameters"]["export_date"]
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    seen: list[tuple[Path, int]] = []
    real_init = checks_mod.SemanticChecks.__init__

    def spy(self: Any, documents: Any = None, *, spill: Path | None = None) -> None:
        assert spill is not None
        seen.append((spill, spill.stat().st_mode & 0o777))
        real_init(self, documents, spill=spill)

    monkeypatch.setattr(checks_mod.SemanticChecks, "__init__", spy)
    import datetime as dt

    day = dt.date.fromisoformat(export_date)
    doc = run_audit(practice / "export", tmp_path / "audit", export_date=day)
    [(folder, mode)] = seen
    assert folder.parent == tmp and mode == 0o700
    assert not folder.exists() and list(tmp.iterdir()) == []  # removed with its stores

    monkeypatch.setattr(checks_mod.SemanticChecks, "__init__", real_init)
    export = open_export(practice / "export")
    reader = ExportReader(export, export_date=day)
    reader.preflight()
    acc = _Audit(reader, _document_sizes(export))  # no spill: every store in memory
    for chunk in reader.iter_all():
        acc.add(chunk)
    in_memory = _finish(acc, export, reader, tmp_path / "audit-mem")
    assert [f for f in doc["findings"] if f["action"] == "flagged"]  # the nasty practice has findings
    assert doc["findings"] == in_memory["findings"] and doc["duplicates"] == in_memory["duplicates"]


def test_checks_that_join_or_group_do_it_a_part_at_a_time_with_the_same_answers(
        practice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a DSO the patients, claims, recalls, coverages and contact points are joined and grouped a part
    of their keys at a time (``Store.partition``); forced to parts of 7 rows, a practice's findings do
    not change."""
    import datetime as dt

    from dos2hl.audit import checks_base
    from dos2hl.audit.checks_base import SAMPLE_REFS

    manifest = json.loads((practice / "manifest.json").read_text())
    day = dt.date.fromisoformat(manifest["parameters"]["export_date"])
    whole = run_audit(practice / "export", tmp_path / "whole", export_date=day)
    calls: list[int] = []
    by_key: Counter[str] = Counter()
    real = checks_base.Store.partition

    def counted(self: Any, key: str, parts: int, **kw: Any) -> Any:
        calls.append(parts)
        by_key[key] += parts > 1
        return real(self, key, parts, **kw)

    monkeypatch.setattr(checks_base, "PART_ROWS", 7)
    monkeypatch.setattr(checks_base.Store, "partition", counted)
    parted = run_audit(practice / "export", tmp_path / "parted", export_date=day)
    assert len(calls) >= 5 and max(calls) > 10  # claims, lines, recalls, emails, phones: many parts
    assert by_key["pat_id"] >= 3  # the patients, their recalls, their primary coverages

    def by_code(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
        return {(f["code"], f.get("table", "")): f for f in doc["findings"]}

    a, b = by_code(whole), by_code(parted)
    assert a.keys() == b.keys()
    for code in ("$2", "$3", "RC1", "EM3", "FAM1", "FAM2", "ST1", "DUP1", "INS1"):
        assert any(c == code for c, _ in a), code  # the nasty practice has each of them
    for k, f in a.items():
        assert (f["count"], f.get("detail")) == (b[k]["count"], b[k].get("detail")), k
        if f["count"] <= SAMPLE_REFS:  # every flagged row is sampled: the same rows, maybe in another order
            refs = sorted(json.dumps(r, sort_keys=True) for r in f["refs"])
            assert refs == sorted(json.dumps(r, sort_keys=True) for r in b[k]["refs"]), k
    assert whole["duplicates"] == parted["duplicates"]


def _fresh(code: str, **env: str) -> dict[str, Any]:
    base = {k: v for k, v in os.environ.items()
            if k not in ("ARROW_DEFAULT_MEMORY_POOL", "MALLOC_MMAP_THRESHOLD_", "JE_ARROW_MALLOC_CONF")}
    out = subprocess.run([sys.executable, "-c", code], env={**base, **env}, capture_output=True, text=True,
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


_CLI = ("import json, os, sys\n"
        "from typer.testing import CliRunner\n"
        "from dos2hl.cli.main import app\n"
        "assert CliRunner().invoke(app, ['version']).exit_code == 0\n"
        "imported = 'pyarrow' in sys.modules\n"
        "import pyarrow as pa\n"
        "from dos2hl.memory import tune_allocators\n"
        "print(json.dumps({'imported': imported, 'pool': pa.default_memory_pool().backend_name,"
        " 'env': os.environ.get('MALLOC_MMAP_THRESHOLD_'), 'again': tune_allocators()}))")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jemalloc and mallopt: Linux builds only")
def test_the_cli_gives_freed_memory_back_unless_the_operator_chose() -> None:
    got = _fresh(_CLI)
    assert not got["imported"]  # a command that needs no Arrow does not import it for this
    assert got["pool"] == "jemalloc"  # set by the command (pyarrow's own default is mimalloc)
    assert got["env"] == str(128 * 1024)  # glibc: set now, and in the environment for its children
    assert got["again"] == {}  # already set: a second call changes nothing
    chosen = _fresh(_CLI, ARROW_DEFAULT_MEMORY_POOL="system", MALLOC_MMAP_THRESHOLD_="4194304")
    assert chosen["pool"] == "system" and chosen["env"] == "4194304"  # the operator's choices stand


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jemalloc: pyarrow's Linux builds only")
def test_the_pool_is_set_directly_when_arrow_is_already_loaded() -> None:
    got = _fresh("import json, pyarrow as pa\n"
                 "before = pa.default_memory_pool().backend_name\n"
                 "from dos2hl.memory import tune_allocators\n"
                 "done = tune_allocators()\n"
                 "print(json.dumps({'before': before, 'after': pa.default_memory_pool().backend_name,"
                 " 'done': done}))")
    assert got["before"] == "mimalloc" and got["after"] == "jemalloc"
    assert got["done"]["arrow_pool"] == "jemalloc"


_FREED = """
import json, re, time
import numpy as np
from dos2hl.memory import tune_allocators
done = tune_allocators()
import pyarrow as pa, pyarrow.compute as pc

def rss():
    return int(re.search(r"VmRSS:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024

src = pa.array(np.arange(1 << 19))
base = rss()
out = [pc.add(src, i) for i in range(64)]  # 256 MB written by Arrow's pool, then freed
held = rss() - base
del out
time.sleep(0.5)
for i in range(50):  # jemalloc purges as it allocates
    x = pc.add(pa.array(np.arange(1000)), i)
    del x
print(json.dumps({"done": done, "held": held, "kept": rss() - base}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="jemalloc: pyarrow's Linux builds only")
def test_freed_arrow_memory_goes_back_in_a_tenth_of_a_second_unless_the_operator_chose() -> None:
    """Arrow's jemalloc keeps freed pages for a second: a reader freeing tens of MB a second held that
    much more on a DSO's large files than on a group's small ones."""
    ours = _fresh(_FREED)
    assert ours["done"]["arrow_decay_ms"] == "100" and ours["held"] > 200
    assert ours["kept"] < 20, ours  # given back within the half second
    slow = _fresh(_FREED, JE_ARROW_MALLOC_CONF="dirty_decay_ms:10000,muzzy_decay_ms:10000")
    assert "arrow_decay_ms" not in slow["done"]  # the operator's choice stands
    assert slow["kept"] >= ours["kept"] + 25, (ours, slow)  # ~40 MB still held after the half second


def test_sums_per_guarantor_spill_and_are_summed_a_part_at_a_time(tmp_path: Path) -> None:
    """A DSO's ledger sums per guarantor (~20 MB at 1 M patients as folded pieces in memory) go to a
    spilled store per chunk; summed a part of the keys at a time they are the sums of every row."""
    import numpy as np

    from dos2hl.audit.checks_base import Partial, Store

    rng = np.random.default_rng(2)
    keys = rng.integers(1, 5_000, 100_000)
    amt = rng.integers(-10_000, 10_000, 100_000)
    spilled = Partial("guar_id", ["amt"], Store(tmp_path / "s.arrows"))
    in_memory = Partial("guar_id", ["amt"])
    for i in range(0, len(keys), 1_000):  # 100 chunks: more than are kept before folding
        t = pa.table({"guar_id": keys[i:i + 1_000], "amt": amt[i:i + 1_000]})
        spilled.add(t)
        in_memory.add(t)
    assert not spilled.store.pieces and (tmp_path / "s.arrows").stat().st_size > 0
    assert len(in_memory.store.pieces) < 64
    want = pa.table({"guar_id": keys, "amt": amt}).group_by("guar_id").aggregate([("amt", "sum")])
    want_d = dict(zip(want["guar_id"].to_pylist(), want["amt_sum"].to_pylist(), strict=True))
    got: dict[int, int] = {}
    for part in spilled.parts(4):
        t = spilled.of(part)
        assert t is not None and t.num_rows < len(want_d) / 3  # a part of the keys
        got.update(zip(t["guar_id"].to_pylist(), t["amt"].to_pylist(), strict=True))
    assert got == want_d
    mem = in_memory.table()
    assert mem is not None
    assert dict(zip(mem["guar_id"].to_pylist(), mem["amt"].to_pylist(), strict=True)) == want_d


@pytest.mark.parametrize("seed", range(6))
def test_a_recall_repeated_for_a_patient_and_type_is_found_by_sorting_as_by_grouping(seed: int) -> None:
    """RC1's repeats (``later_of_same``: a sort and the row before) are the rows a group-by of
    (patient, type) and a join on its first row found, null keys never matching; in any row order."""
    from dos2hl.audit.checks_people import later_of_same

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 400))
    pat = [None if rng.random() < 0.05 else int(x) for x in rng.integers(0, 40, n)]
    typ = [None if rng.random() < 0.05 else str(x) for x in rng.choice(["PRO", "BWX", "PAN"], n)]
    t = pa.table({"pat_id": pa.array(pat, pa.int64()), "recall_type": pa.array(typ, pa.string()),
                  "_i": pa.array(rng.permutation(n), pa.int64())})
    first = t.group_by(["pat_id", "recall_type"]).aggregate([("_i", "min")])
    j = t.join(first, ["pat_id", "recall_type"])
    expected = sorted(j["_i"].filter(pc.not_equal(j["_i"], j["_i_min"])).to_pylist())
    assert sorted(later_of_same(t, ["pat_id", "recall_type"]).to_pylist()) == expected
    assert n < 100 or expected  # the cases have repeats
