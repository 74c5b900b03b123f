"""The model-backed proposer against a fake OpenAI-compatible endpoint on 127.0.0.1: what goes on the
wire (names and masked shapes, never a value), how answers merge with the matcher's, and that every
failure falls back to the offline proposal with a reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from dos2hl.mapping.merge import AGREE, DISAGREE, MODEL_ONLY, MODEL_ONLY_PREFIX, REVIEW, agreed, disagreed
from dos2hl.mapping.model import Mapping
from dos2hl.mapping.model_client import Endpoint, ModelUnavailable, chat_json
from dos2hl.mapping.model_prompt import messages
from dos2hl.mapping.model_proposer import ModelOptions, ModelStats, propose_with_model
from dos2hl.mapping.propose import propose
from tests.mapping.fake_model import FakeModel, completion, fake_model

CANARIES = ["Quixotesque", "Zebediah", "1957-03-14", "413-555-0199", "01062", "canary-note-text", "Kayaking",
            "D0120", "D1110"]
KEY = "sk-test-canary-key-0123456789"

PATIENTS = """PatNum,Surname,Given,BirthDt,CellPhone,Postcode,Notes,Hobby
1001,Quixotesque,Zebediah,1957-03-14,413-555-0199,01062,canary-note-text about the patient and words,Kayaking
1002,Smith,Anna,1980-11-02,413-555-0123,01060,short note,Chess
1003,Jones,Bob,1975-01-30,413-555-0456,01061,,Golf
"""
VISITS = """VisitNum,PatNum,VisitDate,Codes
5001,1001,2026-01-05,D0120;D1110
5002,1002,2026-01-06,D0150
5003,1003,2026-01-07,D2391;D0220;D0230
"""
#: what a good model answers for this export (the matcher has the patient file right, not the visits)
GOOD: dict[str, Any] = {
    "Patients.PatNum": {"table": "patient", "column": "pat_id"},
    "Patients.Surname": {"table": "patient", "column": "lname"},
    "Patients.Given": {"table": "patient", "column": "fname"},
    "Patients.BirthDt": {"table": "patient", "column": "birthdate"},
    "Patients.CellPhone": {"table": "patient", "column": "cphone"},
    "Patients.Postcode": {"table": "patient", "column": "zip"},
    "Patients.Notes": {"table": "patient", "column": "pat_note"},
    "Patients.Hobby": None,
    "Visits.VisitNum": {"table": "appt", "column": "appt_id"},
    "Visits.PatNum": {"table": "appt", "column": "pat_id"},
    "Visits.VisitDate": {"table": "appt", "column": "appt_date"},
    "Visits.Codes": {"table": "apptproc", "column": "proc_code", "split": ";"},
}


@pytest.fixture()
def export(tmp_path: Path) -> Path:
    d = tmp_path / "export"
    d.mkdir()
    (d / "Patients.csv").write_text(PATIENTS)
    (d / "Visits.csv").write_text(VISITS)
    return d


@pytest.fixture()
def fake() -> Any:
    with fake_model() as f:
        yield f


def _run(export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
         **kw: Any) -> tuple[Mapping, ModelStats]:
    monkeypatch.setenv("DOS2HL_MODEL_API_KEY", KEY)
    opts = ModelOptions(url=fake.url, model=kw.pop("model", "fake-1"),
                        cache_dir=kw.pop("cache", tmp_path / "cache"),
                        timeout=kw.pop("timeout", 10.0), retries=kw.pop("retries", 0), **kw)
    return propose_with_model(export, opts)


def _by_source(m: Mapping) -> dict[str, Any]:
    return {e.source: e for e in m.fields}


def test_the_prompt_on_the_wire_carries_names_and_shapes_never_a_value(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer_with(GOOD, {"Patients": "patient", "Visits": "appt"})
    _run(export, fake, tmp_path, monkeypatch)
    assert len(fake.requests) == 1
    wire = b"".join(r.body for r in fake.requests).decode()
    leaked = [c for c in CANARIES if c in wire]
    assert not leaked, leaked
    for expected in ["Patients.Surname", "Visits.Codes", "Aa… (11)", "###-###-####", "YYYY-MM-DD",
                     "A…####;A…####", "patient (Patients): pat_id int", "matcher: patient.lname",
                     "matcher: patient.cphone 0.60; also patient.hphone 0.65, patient.wphone 0.50"]:
        assert expected in json.loads(wire)["messages"][0]["content"] + json.loads(wire)["messages"][1][
            "content"], expected
    req = json.loads(wire)
    assert req["model"] == "fake-1" and req["temperature"] == 0
    assert req["response_format"] == {"type": "json_object"}
    assert fake.requests[0].path == "/v1/chat/completions"
    assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in wire


def test_agreement_raises_confidence_disagreement_lowers_it_and_names_both(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline = _by_source(propose(export))
    answers = dict(GOOD, **{"Patients.Postcode": {"table": "patient", "column": "city"},
                            "Patients.Notes": None})
    fake.answer_with(answers, {"Patients": "patient", "Visits": "appt"})
    merged, stats = _run(export, fake, tmp_path, monkeypatch)
    got = _by_source(merged)
    surname = got["Patients.Surname"]
    assert surname.column == "lname"
    assert surname.confidence == agreed(offline["Patients.Surname"].confidence) > offline[
        "Patients.Surname"].confidence
    assert f"{AGREE}patient.lname" in surname.reasons
    post = got["Patients.Postcode"]
    assert post.column == "zip" and post.target == "contact.postalCode"  # the matcher's stays
    assert post.confidence == disagreed(offline["Patients.Postcode"].confidence) < REVIEW
    assert f"{DISAGREE}model proposes patient.city; matcher proposes patient.zip" in post.reasons
    notes = got["Patients.Notes"]
    assert notes.column == "pat_note" and notes.confidence < REVIEW
    assert any(r.startswith(DISAGREE) and "model proposes no canonical column" in r for r in notes.reasons)
    assert stats.disagreed == 2 and stats.agreed >= 6 and stats.requests == 1


def test_what_only_the_model_knows_is_taken_at_a_moderate_confidence(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    offline = propose(export)
    assert "Visits" not in offline.files and not [e for e in offline.fields if e.file == "Visits"]
    fake.answer_with(GOOD, {"Patients": "patient", "Visits": "appt"})
    merged, stats = _run(export, fake, tmp_path, monkeypatch)
    got = _by_source(merged)
    assert merged.files["Visits"] == "appt"
    codes = got["Visits.Codes"]
    assert (codes.table, codes.column, codes.split) == ("apptproc", "proc_code", ";")
    assert codes.confidence == MODEL_ONLY < REVIEW
    assert any(r.startswith(MODEL_ONLY_PREFIX) for r in codes.reasons)
    assert got["Visits.VisitDate"].column == "appt_date"
    hobby = got["Patients.Hobby"]  # neither knows: the matcher's custom field stays, still to review
    assert hobby.target == "contact.source_hobby" and f"{AGREE}no canonical column fits" in hobby.reasons
    assert stats.model_only == 4
    Mapping.model_validate(merged.model_dump())  # the merged map passes the map's own checks


def test_an_unknown_target_falls_back_for_that_column_only(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = dict(GOOD, **{"Patients.Surname": {"table": "patient", "column": "surname_of_doom"},
                        "Patients.Given": {"table": "nosuchtable", "column": "x"},
                        "Patients.Postcode": "zip"})
    fake.answer_with(bad)
    offline = _by_source(propose(export))
    merged, stats = _run(export, fake, tmp_path, monkeypatch)
    got = _by_source(merged)
    for src in ("Patients.Surname", "Patients.Given", "Patients.Postcode"):
        assert got[src].column == offline[src].column and got[src].confidence == offline[src].confidence
        assert any(r.startswith("model answer rejected:") for r in got[src].reasons)
    assert "model answer rejected: unknown target" in got["Patients.Surname"].reasons
    assert got["Patients.BirthDt"].confidence > offline["Patients.BirthDt"].confidence  # the rest merged
    assert stats.fallbacks == 3


@pytest.mark.parametrize(("status", "body", "reason"), [
    (500, b'{"error": "boom Quixotesque"}', "HTTP 500"),
    (401, b'{"error": "bad key"}', "HTTP 401"),
    (200, completion("this is not json"), "invalid JSON"),
    (200, completion({"answer": 42}), "not the expected JSON object"),
    (200, b'{"choices": []}', "not a chat completion"),
])
def test_every_failure_falls_back_to_the_offline_proposal_with_a_reason(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        status: int, body: bytes, reason: str) -> None:
    fake.script = lambda req, srcs: (status, body)
    offline = propose(export)
    merged, stats = _run(export, fake, tmp_path, monkeypatch, retries=1)
    expected_requests = 2 if status >= 500 else 1  # only 5xx/429/timeouts are retried
    assert stats.requests == len(fake.requests) == expected_requests
    assert stats.failed_prompts == 1 and stats.reasons == {reason: 1}
    off = _by_source(offline)
    for e in merged.fields:
        assert f"model unavailable: {reason}" in e.reasons
        if e.source in off:
            assert (e.target, e.confidence) == (off[e.source].target, off[e.source].confidence)
        text = " ".join(e.reasons)
        assert KEY not in text and "Quixotesque" not in text
    assert not list((tmp_path / "cache").glob("*.json"))  # a failure is never cached


def test_a_slow_endpoint_times_out_and_falls_back(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer_with(GOOD)
    fake.delay = 3.0
    merged, stats = _run(export, fake, tmp_path, monkeypatch, timeout=0.3)
    assert stats.reasons == {"timeout": 1} and stats.requests == 1
    assert all("model unavailable: timeout" in e.reasons for e in merged.fields)


def test_a_second_run_reads_the_cache_and_sends_nothing(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer_with(GOOD, {"Patients": "patient", "Visits": "appt"})
    first, s1 = _run(export, fake, tmp_path, monkeypatch)
    assert (s1.requests, s1.cache_hits) == (1, 0)
    files = list((tmp_path / "cache").glob("*.json"))
    assert len(files) == 1 and len(files[0].stem) == 64
    assert files[0].stat().st_mode & 0o777 == 0o600 and files[0].parent.stat().st_mode & 0o777 == 0o700
    assert not [c for c in CANARIES if c in files[0].read_text()]
    second, s2 = _run(export, fake, tmp_path, monkeypatch)
    assert (s2.requests, s2.cache_hits) == (0, 1) and len(fake.requests) == 1
    assert second.model_dump() == first.model_dump()
    _, s3 = _run(export, fake, tmp_path, monkeypatch, model="another-model")  # the key covers the model
    assert s3.requests == 1 and len(fake.requests) == 2


def test_files_are_batched_under_the_prompt_limit(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer_with(GOOD, {"Patients": "patient", "Visits": "appt"})
    limit = sum(len(m["content"]) for m in messages([])) + 1_000
    merged, stats = _run(export, fake, tmp_path, monkeypatch, max_prompt_chars=limit)
    assert stats.prompts == stats.requests == len(fake.requests) >= 2
    asked = [s for r in fake.requests for s in json.loads(r.body)["messages"][1]["content"].split("\n")
             if s.startswith("- ")]
    assert len(asked) == len(GOOD)  # every column asked once
    for r in fake.requests:
        assert sum(len(m["content"]) for m in json.loads(r.body)["messages"]) <= limit
    assert stats.fallbacks == 0 and merged.files["Visits"] == "appt"


def test_an_endpoint_without_json_mode_or_temperature_is_asked_again_without_them(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def script(req: dict[str, Any], srcs: list[str]) -> tuple[int, bytes]:
        if "response_format" in req:
            return 400, b'{"error": {"message": "response_format is not supported"}}'
        if "temperature" in req:
            return 400, b'{"error": {"message": "Unsupported value: \'temperature\' does not support 0"}}'
        return 200, completion({"files": {}, "columns": {s: GOOD[s] for s in srcs}})
    fake.script = script
    _, stats = _run(export, fake, tmp_path, monkeypatch)
    assert stats.requests == 3 and stats.failed_prompts == 0 and stats.agreed > 0
    fake.requests.clear()
    fake.script = lambda req, srcs: (400, b'{"error": {"message": "bad request"}}')
    _, stats = _run(export, fake, tmp_path, monkeypatch, cache=None)
    assert stats.requests == 1 and stats.reasons == {"HTTP 400": 1}  # any other 400: no retry


def test_an_oversized_answer_is_not_read(fake: FakeModel) -> None:
    fake.script = lambda req, srcs: (200, completion("x" * 5000))
    ep = Endpoint(url=fake.url, model="m", max_response_bytes=1000, retries=0)
    with httpx.Client() as http, pytest.raises(ModelUnavailable, match="response too large"):
        chat_json(ep, [{"role": "user", "content": "hi"}], http=http)


def test_no_key_sends_no_authorization(export: Path, fake: FakeModel, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer_with(GOOD)
    monkeypatch.delenv("DOS2HL_MODEL_API_KEY", raising=False)
    opts = ModelOptions(url=fake.url, cache_dir=None, key_env="DOS2HL_TEST_NO_SUCH_KEY")
    _, stats = propose_with_model(export, opts)
    assert not stats.key and "Authorization" not in fake.requests[0].headers


def test_confidence_arithmetic() -> None:
    assert agreed(0.9) == 0.97 and agreed(0.6) == 0.88
    assert disagreed(0.99) < REVIEW and disagreed(0.4) < 0.4


def test_map_propose_with_a_model_counts_its_requests_and_writes_the_merged_map(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from dos2hl.cli import app
    from dos2hl.mapping.model import load_mapping

    fake.answer_with(GOOD, {"Patients": "patient", "Visits": "appt"})
    monkeypatch.setenv("PRACTICE_LLM_KEY", KEY)
    out = tmp_path / "mapping.yaml"
    args = ["map", "propose", str(export), "--out", str(out), "--model", fake.url, "--model-name", "fake-1",
            "--model-key-env", "PRACTICE_LLM_KEY", "--model-cache", str(tmp_path / "c"),
            "--model-timeout", "10"]
    res = CliRunner().invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout)
    assert summary["model"]["requests"] == 1 and summary["model"]["cache_hits"] == 0
    assert summary["model"]["model_only"] == 4 and summary["model"]["key"] is True
    assert fake.requests[0].headers["Authorization"] == f"Bearer {KEY}"
    m = load_mapping(out)
    assert m.files["Visits"] == "appt" and m.entry("apptproc", "proc_code") is not None
    again = CliRunner().invoke(app, [*args, "--force"])
    assert again.exit_code == 0, again.output
    assert "model: 0 requests, 1 cache hits" in again.stdout and len(fake.requests) == 1
    assert KEY not in res.output + again.output + out.read_text()
    bad = CliRunner().invoke(app, ["map", "propose", str(export), "--out", str(tmp_path / "x.yaml"),
                                   "--model", "ftp://example"])
    assert bad.exit_code == 2 and "http(s)://" in bad.output


def test_an_unreachable_endpoint_leaves_the_offline_map(export: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    opts = ModelOptions(url=f"http://127.0.0.1:{port}/v1", cache_dir=None, retries=1)
    merged, stats = propose_with_model(export, opts)
    assert stats.reasons == {"connection failed": 1} and stats.requests == 2
    offline = _by_source(propose(export))
    assert all(e.target == offline[e.source].target for e in merged.fields if e.source in offline)


def test_a_first_row_read_as_a_header_is_not_sent(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A header-less file whose first row is mostly words is read with that row as its header: its
    column names are cells, so the whole file's columns go out as COLUMN<n> and answers map back."""
    (export / "Recalls.csv").write_text("Quixotesque,Zebediah,413-555-0199,1957-03-14,Kayaking\n"
                                        "Smith,Anna,413-555-0123,1980-11-02,Chess\n")
    fake.answer_with({"Recalls.COLUMN1": {"table": "patient", "column": "lname"},
                      "Recalls.COLUMN2": {"table": "patient", "column": "fname"}}, {"Recalls": "patient"})
    merged, _ = _run(export, fake, tmp_path, monkeypatch)
    wire = b"".join(r.body for r in fake.requests).decode()
    assert "Recalls.COLUMN1" in wire and "Recalls.COLUMN5" in wire
    assert not [c for c in CANARIES if c in wire]
    got = _by_source(merged)
    assert got["Recalls.Quixotesque"].column == "lname" and got["Recalls.Zebediah"].column == "fname"
    assert merged.files["Recalls"] == "recall"  # the matcher's file table stays; the model's is named
    assert f"{DISAGREE}model proposes file Recalls is patient; matcher proposes recall" in got[
        "Recalls.Quixotesque"].reasons


def test_429_and_5xx_are_retried_with_backoff_and_retry_after(fake: FakeModel) -> None:
    replies = [(429, b"{}", {"Retry-After": "2"}), (503, b"{}"), (200, completion({"columns": {}}))]
    fake.script = lambda req, srcs: replies[len(fake.requests) - 1]
    slept: list[float] = []
    ep = Endpoint(url=fake.url, model="m", retries=2)
    with httpx.Client() as http:
        assert chat_json(ep, [{"role": "user", "content": "hi"}], http=http, sleep=slept.append) == \
            '{"columns": {}}'
    assert slept == [2.0, 1.0] and len(fake.requests) == 3  # Retry-After, then the second backoff
    fake.requests.clear()
    fake.script = lambda req, srcs: (503, b"{}")
    with httpx.Client() as http, pytest.raises(ModelUnavailable, match="HTTP 503"):
        chat_json(ep, [{"role": "user", "content": "hi"}], http=http, sleep=slept.append)
    assert len(fake.requests) == 3  # bounded: the first attempt and two retries


def test_the_request_budget_bounds_a_large_export(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer_with(GOOD, {"Patients": "patient", "Visits": "appt"})
    limit = sum(len(m["content"]) for m in messages([])) + 1_000
    merged, stats = _run(export, fake, tmp_path, monkeypatch, max_prompt_chars=limit, max_requests=1)
    assert stats.prompts >= 2 and stats.requests == 1 and stats.reasons == {"request budget spent": 1}
    assert any("model unavailable: request budget spent" in e.reasons for e in merged.fields)


def test_a_wrong_answer_never_leaves_an_entry_above_the_review_threshold() -> None:
    """Even the matcher's surest entries (the reference layout, confidence 1.0) go to review when the
    model contradicts them; where the model agrees they stay sure."""
    import random

    from dos2hl.mapping.merge import merge
    from dos2hl.mapping.model_prompt import ColumnAnswer
    from dos2hl.mapping.propose import reference_mapping
    from dos2hl.model import TABLES

    ref = reference_mapping()
    rng = random.Random(3)
    answers: dict[str, ColumnAnswer | None] = {}
    for i, e in enumerate(ref.fields):
        if i % 2:
            answers[e.source] = ColumnAnswer(table=e.table or "", column=e.column or "")
            continue
        t = rng.choice(list(TABLES))
        c = rng.choice([c for c in TABLES[t].column_names if (t, c) != (e.table, e.column)])
        answers[e.source] = ColumnAnswer(table=t, column=c) if i % 4 else None
    merged, n = merge(ref, answers, {}, {})
    wrong = {s for i, s in enumerate(e.source for e in ref.fields) if not i % 2}
    assert n.disagreed == len(wrong) and n.agreed == len(ref.fields) - len(wrong)
    for e in merged.fields:
        assert (e.confidence < REVIEW) == (e.source in wrong), e.source
        assert any(r.startswith(DISAGREE if e.source in wrong else AGREE) for r in e.reasons)


def test_answers_written_as_table_dot_column_are_understood_and_a_file_without_table_is_named(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.answer_with({"Patients.Surname": "patient.lname", "Patients.Postcode": "patient"},
                     {"Patients": None})
    merged, stats = _run(export, fake, tmp_path, monkeypatch)
    got = _by_source(merged)
    assert f"{AGREE}patient.lname" in got["Patients.Surname"].reasons
    assert "model answer rejected: not {table, column}" in got["Patients.Postcode"].reasons
    assert f"{DISAGREE}model proposes no table for file Patients; matcher proposes patient" in got[
        "Patients.Surname"].reasons
    assert merged.files["Patients"] == "patient"


def test_plain_http_to_another_host_is_warned_about_and_other_schemes_refused(
        caplog: pytest.LogCaptureFixture) -> None:
    from dos2hl.errors import ConfigError

    with caplog.at_level("WARNING", logger="dos2hl.mapping.model_proposer"):
        ModelOptions(url="http://127.0.0.1:9/v1")
        assert not caplog.records
        ModelOptions(url="http://llm.example.internal:8000/v1")
    assert "unencrypted" in caplog.text
    with pytest.raises(ConfigError, match="http"):
        ModelOptions(url="file:///etc/passwd")


def test_an_unexpected_error_falls_back_too_named_by_its_type_only(
        export: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx as _httpx

    class Broken(_httpx.BaseTransport):
        def handle_request(self, request: _httpx.Request) -> _httpx.Response:
            raise RuntimeError("Quixotesque secret detail")

    opts = ModelOptions(url="http://127.0.0.1:9/v1", cache_dir=None, retries=0)
    merged, stats = propose_with_model(export, opts, transport=Broken())
    assert stats.reasons == {"unexpected RuntimeError": 1} and stats.requests == 1
    assert all("model unavailable: unexpected RuntimeError" in e.reasons for e in merged.fields)
    assert "Quixotesque" not in json.dumps(merged.model_dump(mode="json"))


COVERAGE = """CovID,PatNum,CoverageOrder,CarrierName,GroupNum,SubscriberID,EligStatus
1,1001,1,Delta Dental of MA,GRP-00123,XZ998877,Active
2,1002,1,MetLife Dental,GRP-00456,AB112233,Inactive
3,1003,2,Cigna Dental,GRP-00789,CD445566,Active
"""


def test_a_flattened_coverage_file_gets_the_carrier_and_plan_columns_the_matcher_skipped(
        export: Path, fake: FakeModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's story: a coverage file carrying carrier name and group number on each row; the
    matcher (primary table patins) skips them; the model names insco/insplan columns of the same row."""
    (export / "Coverage.csv").write_text(COVERAGE)
    offline = _by_source(propose(export))
    assert offline["Coverage.CarrierName"].target == offline["Coverage.GroupNum"].target == "skip"
    answers = dict(GOOD, **{
        "Coverage.CovID": {"table": "patins", "column": "patins_id"},
        "Coverage.PatNum": {"table": "patins", "column": "pat_id"},
        "Coverage.CoverageOrder": {"table": "patins", "column": "cov_order"},
        "Coverage.CarrierName": {"table": "insco", "column": "carrier_name"},
        "Coverage.GroupNum": {"table": "insplan", "column": "group_no"},
        "Coverage.SubscriberID": {"table": "inssub", "column": "member_id"},
        "Coverage.EligStatus": {"table": "patins", "column": "elig_stat"}})
    fake.answer_with(answers, {"Coverage": "patins", "Patients": "patient", "Visits": "appt"})
    merged, _ = _run(export, fake, tmp_path, monkeypatch)
    wire = b"".join(r.body for r in fake.requests).decode()
    assert not [v for v in ("Delta Dental", "GRP-00123", "XZ998877", "MetLife") if v in wire]
    got = _by_source(merged)
    carrier, group = got["Coverage.CarrierName"], got["Coverage.GroupNum"]
    assert (carrier.table, carrier.column, group.table, group.column) == ("insco", "carrier_name",
                                                                         "insplan", "group_no")
    assert carrier.target != "skip" and carrier.confidence == MODEL_ONLY
    assert merged.files["Coverage"] == "patins"  # the file's rows stay coverage rows
    sub = got["Coverage.SubscriberID"]  # the matcher's patins.pat_member_id stays, to review
    assert (sub.table, sub.column) == ("patins", "pat_member_id") and sub.confidence < REVIEW
    assert f"{DISAGREE}model proposes inssub.member_id; matcher proposes patins.pat_member_id" in sub.reasons
    assert got["Coverage.EligStatus"].confidence > offline["Coverage.EligStatus"].confidence
