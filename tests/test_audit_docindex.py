"""The audit's document index (issue 16): compact at a DSO's ~10 M files, the same findings as before."""

from __future__ import annotations

import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from dos2hl.audit import _document_sizes
from dos2hl.audit.checks import SemanticChecks
from dos2hl.audit.docindex import DocumentIndex
from dos2hl.sources.discover import discover
from dos2hl.sources.profile import load_profile
from dos2hl.storage import LocalStore
from tests.test_audit import _by_code, _pat, _rows


class _Listing:
    """A store that lists ``n`` document files (and the one required table) a key at a time; ``list`` is
    refused: discovery must not hold the listing whole."""

    uri = "mem://x"

    def __init__(self, n: int) -> None:
        self.n = n

    def iter_keys(self, prefix: str = "", *, skip_dirs: Any = ()) -> Iterator[str]:
        yield "PATIENT.CSV"
        for i in range(self.n):
            yield f"IMAGES/D{i // 10000:03d}/P{(i // 100) % 100:03d}/scan_{i:07d}_{i % 7}.jpg"

    def list(self, prefix: str = "", *, skip_dirs: Any = ()) -> list[str]:
        raise AssertionError("the whole listing asked for")

    def size(self, key: str) -> int:
        return 0

    def local_path(self, key: str) -> None:
        return None


def _peak(n: int) -> tuple[int, DocumentIndex]:
    """Peak traced memory (Python objects and numpy; Arrow's buffers are not traced) of discovering ``n``
    document files, sizing them and building the checks' index."""
    tracemalloc.start()
    try:
        export = discover(_Listing(n), load_profile("reference"))  # type: ignore[arg-type]
        index = _document_sizes(export)
        SemanticChecks(index).findings()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(export.document_keys) == n and len(index) == n
    return peak, index


def test_the_index_costs_tens_of_bytes_a_file_and_no_python_object_per_file() -> None:
    small, _ = _peak(2_000)
    big, index = _peak(42_000)
    # before: a list of keys, a dict of sizes, a copy, a dict of lists of tuples and a set: ~500 B a file
    per_file = (big - small) / 40_000
    assert per_file < 60, per_file  # the index's numpy arrays (and their sort's temporaries)
    key_bytes = pc.sum(pc.binary_length(index.keys)).as_py()
    assert (index.nbytes - key_bytes) / len(index) <= 30  # 4 offset + 8 size + 8 hash + 4 order + 1 flag


def _export(root: Path) -> Path:
    """Nested folders, one name in two folders, a flat file, case twins, a link and a FIFO under IMAGES."""
    (root / "PATIENT.CSV").write_bytes(b"PAT_ID\r\n1\r\n")
    files = {
        "IMAGES/S/SMITHA000001/BW_01.jpg": 10,
        "IMAGES/S/SMITHA000001/bw_01.JPG": 11,  # a case twin: the first in key order is matched
        "IMAGES/000002/BW_01.jpg": 12,  # same name, another folder
        "IMAGES/flat.pdf": 13,  # flat: a row's folder does not matter
        "IMAGES/A/b/c/Deep.PDF": 14,  # nested, matched by its last folder, any case
        "IMAGES/A/b/c/orphan.jpg": 15,
        "IMAGES/Z/orphan2.jpg": 16,
    }
    for key, size in files.items():
        p = root / key
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * size)
    (root / "IMAGES" / "A" / "link.jpg").symlink_to(root / "IMAGES" / "flat.pdf")
    os.mkfifo(root / "IMAGES" / "A" / "pipe.jpg")
    return root


def _doc(i: int, path: str, name: str, size: int) -> dict[str, Any]:
    return {"doc_id": i, "pat_id": 1, "file_path": path, "file_name": name, "file_ext": "jpg",
            "file_size": size}


def test_same_findings_on_nested_flat_twin_and_unsafe_files(tmp_path: Path) -> None:
    export = discover(LocalStore(_export(tmp_path)), load_profile("reference"))
    assert len(export.document_keys) == 9
    index = _document_sizes(export)
    assert index.unsafe == 2 and len(index) == 7
    s = SemanticChecks(index)
    s.add("patient", _rows("patient", [_pat(1, lname="Smith")]))
    unc = "\\\\SRV\\DOSIMG\\S\\SMITHA000001\\"
    rows = [
        _doc(1, unc, "bw_01.jpg", 10),  # the first twin (key order), right size
        _doc(2, "D:\\Images\\000002\\", "BW_01.JPG", 99),  # the other folder's file: size differs
        _doc(3, "D:\\Images\\Elsewhere\\", "flat.pdf", 13),  # flat file, any folder
        _doc(4, "D:\\Images\\A\\B\\C\\", "deep.pdf", 14),  # nested, case differs
        _doc(5, "D:\\Images\\Q\\", "BW_01.jpg", 10),  # two files of that name, neither in Q: missing
        _doc(6, "D:\\Images\\A\\", "link.jpg", 1),  # the link is not a file: missing
        _doc(7, "", "pipe.jpg", 1),  # nor the FIFO
    ]
    s.add("document", _rows("document", rows))
    f = _by_code(s)
    assert f["DOC1"]["detail"] == {"extension": 2, "missing": 3, "orphan_files": 3, "size": 1,
                                   "unsafe_files": 2}
    unmatched = {k for k, u in zip(index.keys.to_pylist(), index.unmatched.tolist(), strict=True) if u}
    assert unmatched == {"IMAGES/S/SMITHA000001/bw_01.JPG", "IMAGES/A/b/c/orphan.jpg", "IMAGES/Z/orphan2.jpg"}


def test_a_hash_collision_never_matches_another_name(monkeypatch: pytest.MonkeyPatch) -> None:
    import dos2hl.audit.docindex as di

    monkeypatch.setattr(di, "hash", lambda s: 7, raising=False)  # every name collides
    index = DocumentIndex.from_sizes({"IMAGES/A/x.jpg": 1, "IMAGES/A/y.jpg": 2, "IMAGES/B/X.JPG": 3})
    assert index.candidates("X.jpg") == [("a", 0), ("b", 2)]
    assert index.candidates("z.jpg") == []


def test_an_object_store_is_listed_a_page_at_a_time() -> None:
    from dos2hl.storage import S3Store

    pulled: list[int] = []

    def pages() -> Iterator[dict[str, Any]]:
        for p in range(3):
            pulled.append(p)
            yield {"Contents": [{"Key": f"pre/IMAGES/{p}/{i}.jpg"} for i in range(2)]
                   + [{"Key": f"pre/ledger/{p}.json"}]}

    class _Pager:
        def paginate(self, **kw: Any) -> Iterator[dict[str, Any]]:
            assert kw == {"Bucket": "b", "Prefix": "pre"}
            return pages()

    class _Client:
        def get_paginator(self, name: str) -> _Pager:
            return _Pager()

    store = S3Store.__new__(S3Store)
    store.bucket, store.prefix, store.uri, store.client = "b", "pre", "s3://b/pre", _Client()
    keys = store.iter_keys("", skip_dirs=("LEDGER",))
    assert next(keys) == "IMAGES/0/0.jpg" and pulled == [0]  # one page asked for, not the listing
    assert list(keys) == ["IMAGES/0/1.jpg", "IMAGES/1/0.jpg", "IMAGES/1/1.jpg", "IMAGES/2/0.jpg",
                          "IMAGES/2/1.jpg"]
    assert store.list("", skip_dirs=("ledger",)) == sorted(store.list(""))[:6]


@pytest.mark.s3
def test_an_s3_export_is_indexed_without_a_request_per_file(s3_server: str, s3_bucket: str) -> None:
    import boto3

    from dos2hl.settings import S3Settings
    from dos2hl.storage import S3Store

    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    keys = ["IMAGES/A/x.jpg", "IMAGES/a/X.JPG", "IMAGES/B/y.pdf", "ledger/IMAGES/not.pdf"]
    for key in ["PATIENT.CSV", *keys]:
        s3.put_object(Bucket=s3_bucket, Key=f"exp/{key}", Body=b"PAT_ID\r\n1\r\n")
    store = S3Store(s3_bucket, "exp", S3Settings(endpoint_url=s3_server))
    export = discover(store, load_profile("reference"))
    assert sorted(export.document_keys.to_pylist()) == sorted(keys)  # any folder called IMAGES
    index = _document_sizes(export)
    assert set(index.to_dict().values()) == {-1}  # sizes unknown: no HEAD per file
    found = [(parent, export.document_keys[i].as_py()) for parent, i in index.candidates("x.JPG")]
    assert found == [("a", "IMAGES/A/x.jpg"), ("a", "IMAGES/a/X.JPG")]  # in key order
    assert [store.uri for _ in store.iter_keys("", skip_dirs=("images",))] == [store.uri]  # PATIENT.CSV only


def test_last_names_are_an_index_per_patient_into_the_distinct_names(tmp_path: Path) -> None:
    """The PHI test of file names looks up each document's patient: the same names as finding the id
    among every patient's, at a few bytes a patient (a DSO's million patients, few distinct names)."""
    import numpy as np
    import pyarrow as pa

    from dos2hl.audit.checks_base import Store
    from dos2hl.audit.checks_docs import LastNames

    rng = np.random.default_rng(4)
    n = 200_000
    ids = rng.permutation(n) + 1
    vocab = np.array([f"NAME{i}" for i in range(3_000)] + ["VAN DER BERG"], dtype=object)
    names = vocab[rng.integers(0, len(vocab), n)]
    names[rng.random(n) < 0.02] = None
    ids[:2] = [-7, 2**40]  # outside a dense map's range
    store = Store(tmp_path / "l.arrows")
    for i in range(0, n, 65_536):
        store.add(pa.table({"pat_id": pa.array(ids[i:i + 65_536], pa.int64()),
                            "l": pa.array(names[i:i + 65_536].tolist(), pa.string())}))
    ln = LastNames(store)
    probe = pa.array([*rng.integers(-10, n + 10, 5_000).tolist(), None, -7, 2**40], pa.int64())
    want = pc.take(pa.array(names.tolist(), pa.string()),
                   pc.index_in(probe, value_set=pa.array(ids, pa.int64()))).to_pylist()
    assert ln.of(probe) == want
    assert ln.nbytes < 4 * n  # ~3 bytes a patient, where the ids and names as arrays took ~20
