"""The source audit on a generated nasty practice, and the semantic checks on hand-built rows.

Count comparisons with ``truth/defects.jsonl`` (one line per injected defect and column):

- exact: $2, $3, $4, ST1, FAM2, INS1, INS3, REF1, UDF1, DOC2, RC1, DUP1 (clusters), FAM1's
  ``guarantor_missing`` part, PR2 (+ provider emails the reader blanked as junk, EM2), and DOC1 per
  DOCUMENT row plus orphan files;
- at least the truth: FAM1 (a deleted or archived guarantor is flagged too; the generator does not
  log it), CD2 (apptproc/txitem rows with a retired code and custom-code definitions are flagged;
  the generator logs PROCCODE and LEDGER rows only), PR1 (every row naming the missing provider,
  not only appointments), NOTE2 (amendment rows copy the defect but are not logged);
- EM3 only >= 1: the generator logs a shared email even when the export leaves that email blank, and
  its fictional 555-01xx cell phones collide between unrelated patients.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dos2hl.audit import run_audit
from dos2hl.audit.checks import SemanticChecks, carrier_key
from dos2hl.audit.checks_base import fold_letters
from dos2hl.model import arrow_schema

EXACT = ("$2", "$3", "$4", "ST1", "FAM2", "INS1", "INS3", "REF1", "UDF1", "DOC2", "RC1")
AT_LEAST = ("FAM1", "CD2", "PR1", "NOTE2")


@pytest.fixture(scope="module")
def audited(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from dos2hl.generate import GenerateParams, generate

    root = tmp_path_factory.mktemp("nasty")
    generate(root, GenerateParams(seed=7, patients=400, mess="nasty"))
    manifest = json.loads((root / "manifest.json").read_text())
    export_date = dt.date.fromisoformat(manifest["parameters"]["export_date"])
    doc = run_audit(root / "export", root / "audit", export_date=export_date)
    defects = [json.loads(line) for line in (root / "truth" / "defects.jsonl").read_text().splitlines()]
    return {"root": root, "doc": doc, "defects": defects}


def _findings(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in doc["findings"] if f["action"] == "flagged"}


def test_every_semantic_defect_is_reported(audited: dict[str, Any]) -> None:
    found = _findings(audited["doc"])
    truth = Counter(d["defect_id"] for d in audited["defects"] if d["expect"] == "audit")
    assert len(truth) >= 15, truth  # the nasty profile injects most semantic defects
    for code in truth:
        assert code in found and found[code]["count"] >= 1, code
        assert found[code]["reason"] and found[code]["reason"] != code, code
        assert found[code]["refs"], code


def test_counts_match_truth(audited: dict[str, Any]) -> None:
    found = _findings(audited["doc"])
    audit = [d for d in audited["defects"] if d["expect"] == "audit"]
    truth = Counter(d["defect_id"] for d in audit)
    for code in EXACT:
        if code in truth:
            assert found[code]["count"] == truth[code], code
    for code in AT_LEAST:
        if code in truth:
            assert found[code]["count"] >= truth[code], code
    if "FAM1" in truth:
        assert found["FAM1"]["detail"]["guarantor_missing"] == truth["FAM1"]
    clusters = json.loads((audited["root"] / "truth" / "dup_clusters.json").read_text())
    assert found["DUP1"]["count"] == len(clusters)
    junk = sum(
        1
        for d in audited["defects"]
        if d["defect_id"] == "EM2" and d["file"] == "PROVIDER.CSV" and d["destroyed"]
    )
    assert truth["PR2"] <= found["PR2"]["count"] <= truth["PR2"] + junk
    doc_rows = {json.dumps(d["key"]) for d in audit if d["defect_id"] == "DOC1" and d["key"]}
    orphans = sum(1 for d in audit if d["defect_id"] == "DOC1" and not d["key"])
    assert found["DOC1"]["detail"]["orphan_files"] == orphans
    assert found["DOC1"]["count"] == len(doc_rows) + orphans
    assert found["EM3"]["count"] >= 1


def test_audit_document_shape(audited: dict[str, Any]) -> None:
    doc = audited["doc"]
    assert doc["objects"]["patient"]["rows"] > 0
    assert "birthdate" in doc["objects"]["patient"]["columns"]
    assert doc["objects"]["ledger"]["columns"]["amount"]["kind"] == "money"
    assert doc["phi"]["PATIENT.CSV"]["LNAME"] == "D"
    for f in doc["findings"]:
        assert isinstance(f["code"], str) and f["count"] >= 1
        assert len(f["refs"]) <= 20
        for r in f["refs"]:
            assert {"file", "line", "record"} <= set(r)
    assert doc["duplicates"]["clusters"]
    t = doc["totals"]
    assert doc["balanced"] and t["records"] == t["clean"] + t["repaired"] + t["quarantined"]
    assert t["records"] == sum(f["records"] for f in doc["files"].values())


def test_no_patient_value_in_outputs(audited: dict[str, Any]) -> None:
    root = audited["root"]
    text = (root / "audit" / "audit.json").read_text() + (root / "audit" / "audit.md").read_text()
    pat = pq.read_table(root / "truth" / "patient.parquet").to_pylist()
    names = {p["lname"] for p in pat if p["lname"] and len(p["lname"]) >= 4}
    leaked = sorted(n for n in names if re.search(rf"\b{re.escape(n)}\b", text))
    assert not leaked
    for p in pat:
        for c in ("hphone", "wphone", "cphone"):
            if p[c]:
                assert p[c] not in text and p[c][2:] not in text, c
        if p["email"]:
            assert p["email"] not in text
        if p["birthdate"]:
            b: dt.date = p["birthdate"]
            assert b.isoformat() not in text and f"{b:%m/%d/%Y}" not in text


# -- unit tests on hand-built rows ------------------------------------------------------------------


def _rows(table: str, rows: list[dict[str, Any]], file: str | None = None) -> pa.Table:
    schema = arrow_schema(table)
    cols = {f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in schema}
    cols["_file"] = pa.array([file or f"{table.upper()}.CSV"] * len(rows), pa.string())
    cols["_record"] = pa.array(range(1, len(rows) + 1), pa.int64())
    cols["_line"] = pa.array(range(2, len(rows) + 2), pa.int64())
    return pa.table(cols)


def _by_code(checks: SemanticChecks) -> dict[str, dict[str, Any]]:
    return {f["code"]: f for f in checks.findings()}


def _pat(pid: int, **kw: Any) -> dict[str, Any]:
    return {
        "pat_id": pid,
        "loc_id": "L001",
        "guar_id": pid,
        "pat_stat": "A",
        "lname": f"Name{pid}",
        "fname": "Ann",
        "birthdate": dt.date(1970, 1, pid % 28 + 1),
        **kw,
    }


@pytest.mark.parametrize("spill", [False, True], ids=["in-memory", "spilled"])
def test_money_checks(spill: bool, tmp_path: Path) -> None:
    from decimal import Decimal as D

    s = SemanticChecks(spill=tmp_path if spill else None)
    s.add(
        "patient",
        _rows(
            "patient", [_pat(1, bal_total=D("50.00")), _pat(2, bal_total=D("10.00")), _pat(3, pat_stat="D")]
        ),
    )
    s.add(
        "ledger",
        _rows(
            "ledger",
            [
                {"trans_id": 1, "pat_id": 1, "guar_id": 1, "trans_type": "CHG", "amount": D("50.00")},
                {"trans_id": 2, "pat_id": 2, "guar_id": 2, "trans_type": "ADJ", "amount": D("0.00")},
                {
                    "trans_id": 3,
                    "pat_id": 3,
                    "guar_id": 3,
                    "trans_type": "INSPMT",
                    "amount": D("-5.00"),
                    "claim_id": 99,
                },
                {
                    "trans_id": 4,
                    "pat_id": 1,
                    "guar_id": 1,
                    "trans_type": "INSPMT",
                    "amount": D("0.00"),
                    "claim_id": 10,
                    "deleted_flg": True,
                },
            ],
        ),
    )
    s.add(
        "claim",
        _rows(
            "claim",
            [
                {
                    "claim_id": 10,
                    "pat_id": 1,
                    "billed_amt": D("100.00"),
                    "paid_amt": D("0.00"),
                    "wo_amt": D("0.00"),
                },
                {
                    "claim_id": 11,
                    "pat_id": 1,
                    "billed_amt": D("40.00"),
                    "paid_amt": D("0.00"),
                    "wo_amt": D("-1.00"),
                },
            ],
        ),
    )
    s.add(
        "claimln",
        _rows(
            "claimln",
            [
                {
                    "claimln_id": 1,
                    "claim_id": 10,
                    "fee_billed": D("60.00"),
                    "paid": D("0.00"),
                    "wo": D("0.00"),
                },
                {
                    "claimln_id": 2,
                    "claim_id": 10,
                    "fee_billed": D("30.00"),
                    "paid": D("0.00"),
                    "wo": D("0.00"),
                },
                {
                    "claimln_id": 3,
                    "claim_id": 11,
                    "fee_billed": D("40.00"),
                    "paid": D("0.00"),
                    "wo": D("0.00"),
                },
            ],
        ),
    )
    f = _by_code(s)
    assert f["$2"]["count"] == 2 and f["$2"]["detail"]["billed_differs_from_lines"] == 1
    assert f["$4"]["count"] == 2  # the zero ADJ and the INSPMT of a claim that is not there
    assert f["$4"]["detail"]["insurance_rows_without_claim"] == 1 and f["$4"]["refs"][-1]["key"] == "3"
    names = sorted(p.name for p in tmp_path.iterdir())  # numbered files: no name of a person or a file
    assert bool(names) == spill and all(re.fullmatch(r"store-\d{3}\.arrows", n) for n in names)
    assert f["$3"]["count"] == 1 and f["$3"]["refs"][0]["key"] == "2"  # 10.00 snapshot, 0.00 ledger
    assert f["ST1"]["count"] == 1 and f["ST1"]["refs"][0]["key"] == "3"


def test_people_and_insurance_checks() -> None:
    s = SemanticChecks()
    s.add(
        "provider",
        _rows(
            "provider",
            [
                {"prov_id": "DR1", "prov_type": "D", "email": "a@example.com"},
                {"prov_id": "HYG1", "prov_type": "H"},
                {"prov_id": "OFC", "prov_type": "O"},
            ],
        ),
    )
    s.add(
        "insco",
        _rows(
            "insco",
            [
                {"carrier_id": i, "carrier_name": n}
                for i, n in enumerate(("Delta Dental", "Cigna Dental", "DELTA DNTL of CA"), 1)
            ],
        ),
    )
    s.add(
        "patient",
        _rows(
            "patient",
            [
                _pat(1, email="fam@example.com", pri_prov="DR9"),
                _pat(2, guar_id=1, email="fam@example.com"),
                _pat(3, guar_id=77),
                _pat(4, lname="Test", fname="Patient"),
                _pat(5, pat_stat="N", birthdate=None),
                _pat(6, guar_id=5),
            ],
        ),
    )
    s.add(
        "inssub",
        _rows(
            "inssub",
            [
                {
                    "sub_rec_id": 1,
                    "subscriber_pat_id": 1,
                    "member_id": "900-12-3456",
                    "eff_dt": dt.date(2010, 1, 1),
                },
                {
                    "sub_rec_id": 2,
                    "subscriber_pat_id": 1,
                    "member_id": "ZZ123",
                    "eff_dt": dt.date(2015, 1, 1),
                },
                {
                    "sub_rec_id": 3,
                    "subscriber_pat_id": 2,
                    "member_id": "ZZ124",
                    "eff_dt": dt.date(2001, 1, 1),
                    "term_dt": dt.date(2009, 12, 31),
                },
            ],
        ),
    )
    s.add(
        "patins",
        _rows(
            "patins",
            [
                {"patins_id": 1, "pat_id": 1, "sub_rec_id": 1, "cov_order": 1},
                {"patins_id": 2, "pat_id": 1, "sub_rec_id": 2, "cov_order": 1},  # overlaps 1 (open-ended)
                {"patins_id": 3, "pat_id": 2, "sub_rec_id": 3, "cov_order": 1},
                {"patins_id": 4, "pat_id": 2, "sub_rec_id": 1, "cov_order": 1},  # starts after 3 ended: fine
                {"patins_id": 5, "pat_id": 3, "sub_rec_id": 2, "cov_order": 0},
            ],
        ),
    )
    f = _by_code(s)
    assert f["PR2"]["count"] == 1 and f["PR2"]["refs"][0]["key"] == "HYG1"
    assert f["PR1"]["count"] == 1
    assert f["INS3"]["count"] == 1 and f["INS3"]["refs"][0]["key"] == "3"
    assert f["EM3"]["count"] == 1 and f["EM3"]["refs"][0]["key"] == "2"
    assert f["FAM1"]["count"] == 1 and f["FAM1"]["refs"][0]["key"] == "3"
    assert f["FAM2"]["count"] == 1 and f["FAM2"]["refs"][0]["key"] == "5"
    assert f["DUP3"]["count"] == 1 and f["DUP3"]["refs"][0]["key"] == "4"
    assert f["INS1"]["count"] == 2 and f["INS1"]["detail"] == {"cov_order_0": 1, "overlapping_primary": 1}
    assert f["INS2"]["count"] == 1
    assert carrier_key("DELTA DENTAL INC") == carrier_key("DELTA DNTL OF CA") == "DELTA"


def test_recall_note_and_custom_field_checks() -> None:
    s = SemanticChecks()
    s.add("provider", _rows("provider", [{"prov_id": "DR1", "login": "drone"}]))
    s.add(
        "userfld",
        _rows(
            "userfld",
            [
                {"field_id": 1, "field_type": "D"},
                {"field_id": 2, "field_type": "L", "picklist": "English|Spanish"},
            ],
        ),
    )
    s.add("patient", _rows("patient", [_pat(1), _pat(2, pat_stat="I")]))
    s.add(
        "recall",
        _rows(
            "recall",
            [
                {"recall_id": 1, "pat_id": 1, "recall_type": "PRO", "status": "DUE"},
                {"recall_id": 2, "pat_id": 1, "recall_type": "PRO", "status": "DUE"},
                {"recall_id": 3, "pat_id": 2, "recall_type": "PRO", "status": "OVR"},
                {"recall_id": 4, "pat_id": 2, "recall_type": "BWX", "status": "INA"},
            ],
        ),
    )
    s.add(
        "clinnote",
        _rows(
            "clinnote",
            [
                {"note_id": 1, "pat_id": 1, "prov_id": "DR1", "proc_code": "D2391,D0220"},
                {"note_id": 2, "pat_id": 1, "prov_id": "DRONE", "proc_code": "D0120"},
                {"note_id": 3, "pat_id": 1, "prov_id": "JEN3"},
            ],
        ),
    )
    s.add(
        "patudf",
        _rows(
            "patudf",
            [
                {"pat_id": 1, "field_id": 1, "value": "02/04/2011"},
                {"pat_id": 2, "field_id": 1, "value": "2/4/11"},
                {"pat_id": 1, "field_id": 2, "value": "English"},
                {"pat_id": 2, "field_id": 2, "value": "english"},
            ],
        ),
    )
    f = _by_code(s)
    assert f["RC1"]["count"] == 2 and {r["key"] for r in f["RC1"]["refs"]} == {"2", "3"}
    assert f["NOTE2"]["count"] == 2 and {r["key"] for r in f["NOTE2"]["refs"]} == {"1", "3"}
    assert f["UDF1"]["count"] == 2 and {r["key"] for r in f["UDF1"]["refs"]} == {"2|1", "2|2"}


def test_document_checks_never_report_names() -> None:
    files = {
        "IMAGES/S/SMITHANN000001/BW_20200101_01.jpg": 100,
        "IMAGES/S/SMITHANN000001/scan0001.pdf": 50,
        "IMAGES/000002/BW_20200101_01.jpg": 70,
        "IMAGES/000002/IMG_1111.jpg": 10,
        "IMAGES/000002/Pano.dxr": 10,
    }
    s = SemanticChecks(files)
    s.add("patient", _rows("patient", [_pat(1, lname="Smith"), _pat(2, lname="Jones")]))
    unc, drive = "\\\\SRV\\IMG\\S\\SMITHANN000001\\", "D:\\DentOSoft\\Images\\000002\\"
    s.add(
        "document",
        _rows(
            "document",
            [
                {
                    "doc_id": 1,
                    "pat_id": 1,
                    "file_path": unc,
                    "file_name": "BW_20200101_01.jpg",
                    "file_ext": "JPG",
                    "file_size": 100,
                },  # fine
                {
                    "doc_id": 2,
                    "pat_id": 1,
                    "file_path": unc,
                    "file_name": "scan0001.pdf",
                    "file_ext": "pdf",
                    "file_size": 51,
                },  # size differs
                {
                    "doc_id": 3,
                    "pat_id": 2,
                    "file_path": drive,
                    "file_name": "BW_20200101_01.jpg",
                    "file_ext": "jpg",
                    "file_size": 70,
                },  # same name as doc 1, other folder: fine
                {
                    "doc_id": 4,
                    "pat_id": 2,
                    "file_path": drive,
                    "file_name": "Jones, Ann 01-02-2020.pdf",
                    "file_ext": "pdf",
                    "file_size": 5,
                },  # missing and a name in the file name
                {
                    "doc_id": 5,
                    "pat_id": 2,
                    "file_path": drive,
                    "file_name": "Pano.dxr",
                    "file_ext": "dxr",
                    "file_size": 10,
                    "mime_type": "application/octet-stream",
                },  # proprietary
            ],
        ),
    )
    f = _by_code(s)
    assert f["DOC1"]["count"] == 3  # docs 2 and 4, and the orphan IMG_1111.jpg
    assert f["DOC1"]["detail"] == {"missing": 1, "name_has_patient_name": 1, "orphan_files": 1, "size": 1}
    assert f["DOC2"]["count"] == 1 and f["DOC2"]["refs"][0]["key"] == "5"
    text = json.dumps(s.findings())
    assert "Jones" not in text and "SMITH" not in text and ".pdf" not in text


def test_fold_letters() -> None:
    assert fold_letters(pa.array(["Muñoz-Díaz", None]), keep_spaces=True).to_pylist() == ["MUNOZ DIAZ", None]
    assert fold_letters(pa.array(["O'Brien Søren"])).to_pylist() == ["OBRIENSREN"]


def test_duplicates_section_and_findings_agree(audited: dict[str, Any]) -> None:
    doc = audited["doc"]
    assert _findings(doc)["DUP1"]["count"] == len(doc["duplicates"]["clusters"])
    assert Path(audited["root"] / "audit" / "audit.md").read_text().count("DUP1") >= 1


def test_unmapped_columns_are_profiled_with_an_inferred_type(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "LOCATION.CSV").write_bytes(b"LOC_ID,LOC_NAME\r\nL001,Main\r\n")
    rows = "".join(f"{i},L001,Name{i},{i % 7},0{1 + i % 9}/1{i % 9}/2019,Y,note {i}\r\n"
                   for i in range(1, 60))
    (export / "PATIENT.CSV").write_bytes(
        ("PAT_ID,LOC_ID,LNAME,VISITS_YTD,ORTHO_START,SMS_OPTIN,FREE_TEXT\r\n" + rows).encode())
    doc = run_audit(export, tmp_path / "audit", export_date=dt.date(2024, 6, 28))
    unmapped = doc["custom_fields"]["unmapped"]
    kinds = {u["column"]: u["kind"] for u in unmapped.values()}
    assert kinds == {"VISITS_YTD": "int", "ORTHO_START": "date", "SMS_OPTIN": "bool", "FREE_TEXT": "str"}
    assert unmapped["PATIENT.CSV.VISITS_YTD"]["distinct"] == 7
    assert doc["phi"]["PATIENT.CSV"]["FREE_TEXT"] == "D"
    assert "ORTHO_START" in (tmp_path / "audit" / "audit.md").read_text()
