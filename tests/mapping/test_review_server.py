"""The review page's server: loopback only, the one-time token on every request (403 without it, or with
another Host), confirm writes the map like ``dos2hl map confirm`` and stops the server, an idle server
stops by itself, and no value of the export is in anything it answers (the canary)."""

from __future__ import annotations

import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from dos2hl.mapping.model import load_mapping, require_confirmed
from dos2hl.mapping.review_server import ReviewServer
from tests.mapping.review_fixture import CANARIES, running, write_export


def _call(server: ReviewServer, method: str, path: str, body: Any = None, *, token: str | None = "ok",
          host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    headers = {"Host": host or f"127.0.0.1:{server.port}"}
    if token == "ok":
        token = server.token
    if token is not None and method == "POST":
        headers["X-Review-Token"] = token
    elif token is not None:
        path += ("&" if "?" in path else "?") + f"token={token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(method, path, body=data, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


@pytest.fixture
def world(tmp_path: Path) -> tuple[Path, Path]:
    return write_export(tmp_path)


def test_the_server_listens_on_loopback_and_refuses_without_the_token_or_from_another_host(world) -> None:
    export, path = world
    with running(path, export) as server:
        assert server.httpd.server_address[0] == "127.0.0.1" and server.port > 0
        assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=")
        assert _call(server, "GET", "/")[0] == 200
        assert _call(server, "GET", "/", token=None)[0] == 403
        assert _call(server, "GET", "/", token=server.token[:-1] + "x")[0] == 403
        assert _call(server, "GET", "/api/state", token=None)[0] == 403
        assert _call(server, "GET", "/", host=f"evil.example:{server.port}")[0] == 403  # DNS rebinding
        assert _call(server, "GET", "/", host=f"localhost:{server.port}")[0] == 200
        assert _call(server, "POST", "/api/confirm", {"by": "Mallory"}, token=None)[0] == 403  # CSRF
        assert _call(server, "GET", "/nope")[0] == 404
    assert load_mapping(path).confirmed is None


def test_the_page_is_one_file_with_a_strict_policy_and_no_asset_from_elsewhere(world) -> None:
    export, path = world
    with running(path, export) as server:
        status, headers, body = _call(server, "GET", "/")
    html = body.decode()
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["cache-control"] == "no-store"
    assert "<link" not in html and " src=" not in html and "http://" not in html and "https://" not in html


def test_no_value_of_the_export_in_the_page_or_any_answer(world) -> None:
    export, path = world
    with running(path, export) as server:
        answers = [_call(server, "GET", "/")[2], _call(server, "GET", "/api/state")[2],
                   _call(server, "POST", "/api/preview",
                         {"edits": [{"source": "Patients.PostCode", "option": "col:patient.zip"}]})[2],
                   _call(server, "POST", "/api/preview",
                         {"edits": [{"source": "Patients.X", "phi": "omit"}]})[2],
                   _call(server, "POST", "/api/confirm", {"by": " "})[2]]
    text = b"\n".join(answers).decode()
    assert "Patients.PostCode" in text and "#####" in text and "YYYY-MM-DD" in text
    for canary in CANARIES:
        assert canary not in text, canary


def test_preview_answers_what_the_edits_do_to_the_schema_and_refuses_a_bad_edit(world) -> None:
    export, path = world
    with running(path, export) as server:
        status, _, body = _call(server, "POST", "/api/preview",
                                {"edits": [{"source": "Patients.PostCode", "option": "col:patient.zip"}]})
        out = json.loads(body)
        assert status == 200 and out["changed"] == 1
        assert out["impact"]["removed"] == ["contact.source_postcode"]
        status, _, body = _call(server, "POST", "/api/preview",
                                {"edits": [{"source": "Patients.PostCode", "type": "BLOB"}]})
        assert status == 422 and "BLOB" in json.loads(body)["error"]
        assert _call(server, "POST", "/api/preview", [1, 2])[0] == 422  # JSON, but not an object
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.request("POST", "/api/preview", body=b"{not json", headers={
            "Host": f"127.0.0.1:{server.port}", "X-Review-Token": server.token,
            "Content-Type": "application/json"})
        assert conn.getresponse().status == 400
        conn.close()


def test_confirm_refuses_a_blank_name_then_writes_the_edited_map_confirmed_and_stops(world) -> None:
    export, path = world
    with running(path, export) as server:
        edits = [{"source": "Patients.PostCode", "option": "col:patient.zip"},
                 {"source": "Patients.MedAlert", "phi": "omit"}]
        status, _, body = _call(server, "POST", "/api/confirm", {"by": "   ", "edits": edits})
        assert status == 422 and "name" in json.loads(body)["error"]
        assert load_mapping(path).confirmed is None
        status, _, body = _call(server, "POST", "/api/confirm", {"by": " Dr. Rivera ", "edits": edits})
        out = json.loads(body)
        assert status == 200 and out["by"] == "Dr. Rivera"
        deadline = time.monotonic() + 30
        while server.httpd.socket.fileno() != -1 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.httpd.socket.fileno() == -1, "the server stops after confirming"
    m = require_confirmed(path)
    assert m.confirmed is not None and m.confirmed.by == "Dr. Rivera"
    assert m.confirmed.sha256 == m.content_hash() == out["sha256"]
    post = next(e for e in m.fields if e.source == "Patients.PostCode")
    assert post.target == "contact.postalCode" and post.column == "zip"
    assert next(e for e in m.fields if e.source == "Patients.MedAlert").phi == "omit"


def test_confirm_refuses_when_the_file_changed_on_disk_since_the_page_opened(world) -> None:
    export, path = world
    with running(path, export) as server:
        path.write_text(path.read_text().replace("confidence: 0.3", "confidence: 0.31"))
        status, _, body = _call(server, "POST", "/api/confirm", {"by": "Dr. Rivera"})
        assert status == 422 and "changed on disk" in json.loads(body)["error"]
    assert load_mapping(path).confirmed is None


def test_an_idle_server_stops_by_itself(world) -> None:
    export, path = world
    from dos2hl.mapping.model import load_mapping as load
    from dos2hl.mapping.review import read_export

    shapes, _ = read_export(export)
    server = ReviewServer(path, shapes, {}, idle_s=0.5)
    assert load(path).confirmed is None
    result: list[Any] = []
    t = threading.Thread(target=lambda: result.append(server.serve()), daemon=True)
    t.start()
    t.join(timeout=30)
    assert not t.is_alive() and result == [None]


def test_a_hostile_column_name_is_text_in_the_page_not_markup(tmp_path: Path) -> None:
    from dos2hl.mapping.model import save_mapping
    from dos2hl.mapping.propose import propose

    export = tmp_path / "export"
    export.mkdir()
    evil = "</script><script>alert(1)</script>"
    (export / "Patients.csv").write_text(f'PatID,LastName,"{evil}"\n1,Brown,x\n2,Green,y\n', encoding="utf-8")
    path = save_mapping(propose(export), tmp_path / "mapping.yaml")
    with running(path, export) as server:
        html = _call(server, "GET", "/")[2].decode()
        state = json.loads(_call(server, "GET", "/api/state")[2])
    assert any(evil in r["source"] for r in state["rows"])  # the name is shown, as text
    assert evil not in html and "<script>alert" not in html
    assert html.count("<script") == 2  # the state's JSON and the page's own script, nothing else


def test_a_single_office_map_shows_its_office_and_confirms_it(tmp_path: Path) -> None:
    from dos2hl.mapping.model import save_mapping
    from dos2hl.mapping.propose import propose

    export = tmp_path / "export"
    export.mkdir()
    (export / "Patients.csv").write_text("PatID,LastName\n1,Brown\n2,Green\n", encoding="utf-8")
    path = save_mapping(propose(export, location="L004"), tmp_path / "mapping.yaml")
    with running(path, export) as server:
        html = _call(server, "GET", "/")[2].decode()
        status = _call(server, "POST", "/api/confirm", {"by": "Dr. Example", "edits": []})[0]
    assert 'id="office"' in html and "L004" in html
    assert status == 200
    assert require_confirmed(path).export.location == "L004"
