"""Staging: shards by location and patient hash, manifest last, quarantine as Parquet, S3 with SSE-KMS."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dos2hl.api import stage_export
from dos2hl.settings import Dos2hlSettings, S3Settings
from dos2hl.staging import shard_of

LOCATION = (
    b"LOC_ID,LOC_NAME,PHONE\r\nL001,Main,(413) 555-0100\r\nL002,North,(617) 555-0101\r\n"
)
PATIENT = (
    b"PAT_ID,LOC_ID,LNAME,FNAME,BIRTHDATE\r\n"
    + b"".join(f"{i},L00{1 + i % 2},Name{i},First{i},01/0{1 + i % 9}/1980\r\n".encode() for i in range(1, 41))
    + b"41,L001,Broken\r\n"
)
APPT = b"APPT_ID,PAT_ID,LOC_ID,APPT_DATE,STATUS\r\n" + b"".join(
    f"{100 + i},{i},L00{1 + i % 2},02/03/2024,CMP\r\n".encode() for i in range(1, 41)
) + b"999,0,L002,02/03/2024,SCH\r\n998,777,L001,02/03/2024,SCH\r\n"
CLAIM = b"CLAIM_ID,PAT_ID,STATUS\r\n" + b"".join(f"{500 + i},{i},R\r\n".encode() for i in range(1, 41))
CLAIMLN = b"CLAIMLN_ID,CLAIM_ID,LINE_NO,PROC_CODE\r\n" + b"".join(
    f"{900 + i},{500 + i},1,D0120\r\n".encode() for i in range(1, 41))


@pytest.fixture
def small_export(tmp_path: Path) -> Path:
    root = tmp_path / "export"
    root.mkdir()
    for name, data in {"LOCATION.CSV": LOCATION, "PATIENT.CSV": PATIENT, "APPT.CSV": APPT,
                       "CLAIM.CSV": CLAIM, "CLAIMLN.CSV": CLAIMLN}.items():
        (root / name).write_bytes(data)
    return root


def test_shard_hash_is_stable_and_spread() -> None:
    ids = pa.array(range(1, 10_001), pa.int64())
    a = shard_of(ids, 16).to_pylist()
    assert a == shard_of(ids, 16).to_pylist()
    assert a[:4] == [((i * 2654435761) % 2**32) % 16 for i in range(1, 5)]
    counts = [a.count(s) for s in range(16)]
    assert min(counts) > 500  # roughly even


def test_local_stage_keeps_each_patient_and_children_in_one_shard(small_export: Path, tmp_path: Path) -> None:
    out = tmp_path / "staged"
    res = stage_export(small_export, out, shards=4, export_date=dt.date(2024, 6, 28))
    m = json.loads((out / "manifest.json").read_text())
    assert m["balanced"] and res.balanced
    assert m["totals"]["records"] == 41 + 42 + 40 + 40 + 2
    assert m["totals"]["quarantined"] == 2  # the broken patient row and the appointment of patient 777
    place: dict[int, tuple[str, int]] = {}
    for shard in m["tables"]["patient"]["shards"]:
        t = pq.read_table(out / shard["path"])
        assert t.num_rows == shard["rows"]
        for pid in t["pat_id"].to_pylist():
            place[pid] = (shard["location"], shard["shard"])
    assert len(place) == 40
    for table, col in (("appt", "pat_id"), ("claim", "pat_id")):
        for shard in m["tables"][table]["shards"]:
            for pid in pq.read_table(out / shard["path"])[col].to_pylist():
                if pid:
                    assert place[pid] == (shard["location"], shard["shard"])
    for shard in m["tables"]["claimln"]["shards"]:
        for cid in pq.read_table(out / shard["path"])["claim_id"].to_pylist():
            assert place[cid - 500] == (shard["location"], shard["shard"])
    q = pq.read_table(out / "quarantine" / "appt.parquet").to_pylist()
    assert [(r["code"], r["line"]) for r in q] == [("FK1", 43)]
    # The placeholder appointment (no patient) stays with its own location.
    placeholders = [s for s in m["tables"]["appt"]["shards"]
                    if 999 in pq.read_table(out / s["path"])["appt_id"].to_pylist()]
    assert placeholders[0]["location"] == "L002"


def test_parquet_statistics_only_for_reference_columns(small_export: Path, tmp_path: Path) -> None:
    out = tmp_path / "staged"
    stage_export(small_export, out, shards=2)
    shard = json.loads((out / "manifest.json").read_text())["tables"]["patient"]["shards"][0]
    meta = pq.ParquetFile(out / shard["path"]).metadata.row_group(0)
    by_name = {meta.column(i).path_in_schema: meta.column(i) for i in range(meta.num_columns)}
    assert by_name["lname"].statistics is None or not by_name["lname"].statistics.has_min_max
    assert by_name["birthdate"].statistics is None or not by_name["birthdate"].statistics.has_min_max
    assert by_name["loc_id"].statistics is not None and by_name["loc_id"].statistics.has_min_max


@pytest.mark.s3
def test_stage_from_and_to_s3_with_sse_kms(small_export: Path, s3_server: str, s3_bucket: str) -> None:
    s3 = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    for p in small_export.iterdir():
        s3.put_object(Bucket=s3_bucket, Key=f"exports/acme/{p.name}", Body=p.read_bytes())
    settings = Dos2hlSettings(s3=S3Settings(endpoint_url=s3_server, kms_key_id="alias/dos2hl-test"))
    res = stage_export(f"s3://{s3_bucket}/exports/acme", f"s3://{s3_bucket}/runs/r1/staged",
                       settings=settings, shards=4)
    assert res.balanced
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket, Prefix="runs/r1/staged/")["Contents"]]
    assert "runs/r1/staged/manifest.json" in keys
    assert any(k.startswith("runs/r1/staged/patient/location=L001/shard=") for k in keys)
    assert "runs/r1/staged/quarantine/patient.parquet" in keys
    for key in keys:
        head = s3.head_object(Bucket=s3_bucket, Key=key)
        assert head["ServerSideEncryption"] == "aws:kms"
        assert head.get("SSEKMSKeyId", "").endswith("alias/dos2hl-test")
        assert "Name" not in key and "First" not in key  # ids and table names only
    manifest = json.loads(s3.get_object(Bucket=s3_bucket, Key="runs/r1/staged/manifest.json")["Body"].read())
    assert manifest["source"] == f"s3://{s3_bucket}/exports/acme"
    assert manifest["files"]["PATIENT.CSV"]["sha256"]


def test_existing_destination_is_refused_unless_overwrite(small_export: Path, tmp_path: Path) -> None:
    from dos2hl.errors import ConfigError

    out = tmp_path / "staged"
    stage_export(small_export, out, shards=4)
    stale = out / "patient" / "location=L009" / "shard=000.parquet"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    with pytest.raises(ConfigError, match="--overwrite"):
        stage_export(small_export, out, shards=4)
    res = stage_export(small_export, out, shards=2, overwrite=True)
    assert not stale.exists()
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    listed = {s["path"] for t in res.manifest["tables"].values() for s in t["shards"]}
    listed |= {q["path"] for q in res.manifest["quarantine"].values()} | {"manifest.json"}
    listed |= {f["path"] for f in res.manifest["findings"].values()}
    assert files == listed  # nothing stale beside the new manifest


def test_s3_stores_make_their_clients_one_at_a_time(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """prepare checks every location at once and shards run in threads, each opening stores: boto3's
    default session is not safe to create clients from several threads at once."""
    import threading
    import time

    import boto3

    from dos2hl.settings import S3Settings
    from dos2hl.storage import S3Store

    inside, most = [0], [0]
    lock = threading.Lock()

    def client(*args, **kwargs):  # type: ignore[no-untyped-def]
        with lock:
            inside[0] += 1
            most[0] = max(most[0], inside[0])
        time.sleep(0.02)
        with lock:
            inside[0] -= 1
        return object()

    monkeypatch.setattr(boto3, "client", client)
    threads = [threading.Thread(target=S3Store, args=("bucket", f"runs/{i}", S3Settings())) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1


APPTPROC = b"APPT_ID,SEQ,PROC_CODE\r\n" + b"".join(f"{100 + i},1,D0120\r\n".encode() for i in range(1, 41))


@pytest.mark.parametrize("step", ["stage", "audit"])
def test_a_parent_map_goes_once_its_children_are_read(small_export: Path, tmp_path: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                                      step: str) -> None:
    """The appointments' map (2 bytes an id at staging) is dropped once the appointment procedures are
    read, the claims' once the claim lines are; what they placed is unchanged."""
    from dos2hl.audit import run_audit
    from dos2hl.staging import Partitioner

    (small_export / "APPTPROC.CSV").write_bytes(APPTPROC)
    held: dict[str, set[str]] = {}
    call = Partitioner.__call__

    def spy(self, chunk):  # type: ignore[no-untyped-def]
        held.setdefault(chunk.table, set()).update(p for p, m in self.parents.items() if m is not None)
        return call(self, chunk)

    monkeypatch.setattr(Partitioner, "__call__", spy)
    out = tmp_path / step
    if step == "audit":
        doc = run_audit(small_export, out, export_date=dt.date(2024, 6, 28))
        assert doc["objects"]["apptproc"]["by_location"] == {"L001": 20, "L002": 20}  # type: ignore[index]
        assert doc["objects"]["claimln"]["by_location"] == {"L001": 20, "L002": 20}  # type: ignore[index]
    else:
        stage_export(small_export, out, shards=4, export_date=dt.date(2024, 6, 28))
        m = json.loads((out / "manifest.json").read_text())
        place = {pid: (s["location"], s["shard"]) for s in m["tables"]["patient"]["shards"]
                 for pid in pq.read_table(out / s["path"])["pat_id"].to_pylist()}
        for table, key, base in (("apptproc", "appt_id", 100), ("claimln", "claim_id", 500)):
            assert m["tables"][table]["rows"] == 40
            for s in m["tables"][table]["shards"]:
                for i in pq.read_table(out / s["path"])[key].to_pylist():
                    assert place[i - base] == (s["location"], s["shard"])
    assert held["apptproc"] == {"appt", "claim"}
    assert held["claim"] == {"claim"}  # the appointments' map went after the appointment procedures
    assert held["claimln"] == {"claim"}


def test_a_retired_parent_map_refuses_rows_rather_than_orphan_them() -> None:
    from dos2hl.staging import Partitioner

    p = Partitioner(4)
    p.retire({"patient", "claim", "claimln"})
    assert p.parents["appt"] is None and p.parents["claim"] is not None
    with pytest.raises(RuntimeError, match="apptproc after the appt map was retired"):
        p._parent("appt", "apptproc")
    p.retire({"patient", "claimln", "recall"})  # claim lines still to come: the claims' map stays
    assert p.parents["claim"] is not None
    p.retire({"patient", "recall"})
    assert p.parents["claim"] is None
