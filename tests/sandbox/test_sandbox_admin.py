"""Journal, dump, CSV import, the CLI, and the real server under uvicorn."""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx

from dos2hl.sandbox import dump


def test_journal_has_no_token_and_no_body_values(sb) -> None:
    secret_email = "very.private@example.com"
    sb.contact(firstName="Zebediah", email=secret_email)
    sb.get("/nowhere")
    text = (sb.state / "journal.jsonl").read_text()
    lines = [json.loads(x) for x in text.splitlines()]
    assert (
        lines[0]["path"] == "/contacts/" and lines[0]["status"] == 201 and lines[0]["location"] == sb.locs[0]
    )
    assert len(lines[0]["body_sha256"]) == 64 and "latency_ms" in lines[0] and "time" in lines[0]
    for token in sb.tokens.values():
        assert token not in text
    assert secret_email not in text and "Zebediah" not in text


def test_dump_shape(sb) -> None:
    c = sb.contact(firstName="Dump")
    sb.post(f"/contacts/{c['id']}/notes", {"body": "n"})
    state = dump(sb.state)
    assert set(state) == {"locations"} and set(state["locations"]) == set(sb.locs)
    loc = state["locations"][sb.locs[0]]
    for key in ("contacts", "notes", "tasks", "opportunities", "appointments", "custom_fields", "tags",
                "objects", "associations", "relations", "files", "users"):
        assert key in loc
    assert loc["contacts"] == [c] and len(loc["notes"]) == 1 and len(loc["users"]) == 3
    assert state["locations"][sb.locs[1]]["contacts"] == []
    assert all(t not in json.dumps(state) for t in sb.tokens.values())


def test_csv_import_modes_and_dedupe(sb) -> None:
    sb.post(f"/locations/{sb.locs[0]}/customFields", {"name": "Patient ID", "dataType": "TEXT"})
    csv_text = ("firstName,email,contact.patient_id,tags\n"
                "Ann,fam@example.com,P1,\"a,b\"\n"
                "Tim,fam@example.com,P2,\n")
    h = sb.headers()
    before = sb.get("/workflows/", params={"locationId": sb.locs[0]}).headers["X-RateLimit-Remaining"]
    r = sb.client.post("/_sandbox/imports", params={"mode": "create", "dedupe": "contact.patient_id"},
                       content=csv_text, headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = r.text.splitlines()
    assert rows[0] == "row,status,contactId,error" and rows[1].split(",")[1] == "created"
    assert rows[2].split(",")[1] == "created"  # deduped on the unique field, not the shared email
    r = sb.client.post("/_sandbox/imports", params={"mode": "create_update", "dedupe": "email"},
                       content="firstName,email\nAnnie,fam@example.com\n", headers=h)
    assert r.text.splitlines()[1].split(",")[1] == "updated"
    after = sb.get("/workflows/", params={"locationId": sb.locs[0]}).headers["X-RateLimit-Remaining"]
    assert int(before) - int(after) == 1  # imports do not count against the API limits
    r = sb.client.post("/_sandbox/imports", content="x", headers={"Version": "x"})
    assert r.status_code == 401 and r.json() == {"statusCode": 401, "message": "Invalid JWT"}


def test_cli_dump(sb) -> None:
    from typer.testing import CliRunner

    from dos2hl.cli import app

    sb.contact(firstName="Cli")
    result = CliRunner().invoke(app, ["sandbox", "dump", "--state", str(sb.state)])
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.output)["locations"]) == set(sb.locs)


def test_real_server_under_uvicorn(tmp_path) -> None:
    import uvicorn

    from dos2hl.sandbox import create_app
    from dos2hl.sandbox.server import prepare_state

    tokens = prepare_state(tmp_path, 1, tmp_path / "tokens.json")
    assert json.loads((tmp_path / "tokens.json").read_text()) == {"locations": tokens}
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(tmp_path, faults="reset=0.0"), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 10
        while True:
            try:
                if httpx.get(f"{base}/_sandbox/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        loc, token = next(iter(tokens.items()))
        r = httpx.post(f"{base}/contacts", json={"locationId": loc, "firstName": "Wire"},
                       headers={"Authorization": f"Bearer {token}", "Version": "2021-07-28"})
        assert r.status_code == 201 and r.headers["x-ratelimit-max"] == "100"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def test_users_opportunities_and_media_validate(sb) -> None:
    """One pass over the remaining families; check_responses turns any contract drift into a 500."""
    loc = sb.locs[0]
    company = sb.get(f"/locations/{loc}").json()["location"]["companyId"]
    users = sb.get("/users/", params={"locationId": loc}).json()["users"]
    assert len(users) == 3
    r = sb.get("/users/search", params={"companyId": company, "locationId": loc, "query": "dana"})
    assert r.status_code == 200 and r.json()["count"] == 1
    assert sb.get(f"/users/{users[0]['id']}").status_code == 200
    contact = sb.contact(firstName="Opp")
    pipeline = sb.get("/opportunities/pipelines", params={"locationId": loc}).json()["pipelines"][1]
    assert pipeline["name"] == "Recall"
    r = sb.post("/opportunities/", {"locationId": loc, "pipelineId": pipeline["id"], "name": "Recall 2024",
                                    "status": "open", "contactId": contact["id"], "monetaryValue": 120})
    assert r.status_code == 201
    opp = r.json()["opportunity"]
    assert opp["pipelineStageId"] == pipeline["stages"][0]["id"]
    r = sb.get("/opportunities/search", params={"location_id": loc, "contact_id": contact["id"]})
    assert [o["id"] for o in r.json()["opportunities"]] == [opp["id"]]
    assert sb.client.put(f"/opportunities/{opp['id']}", json={"status": "won"},
                         headers=sb.headers()).status_code == 200
    assert sb.client.delete(f"/opportunities/{opp['id']}", headers=sb.headers()).json() == {"succeded": True}
    r = sb.client.post("/medias/upload-file", files={"file": ("x.png", b"123", "image/png")},
                       data={"name": "x.png"}, headers=sb.headers())
    assert r.status_code == 200 and r.json()["fileId"]
    r = sb.get("/medias/files", params={"sortBy": "createdAt", "sortOrder": "asc", "type": "file",
                                        "altType": "location", "altId": loc})
    assert r.status_code == 200 and len(r.json()["files"]) == 1
    big = b"0" * (25 * 1024 * 1024 + 1)
    r = sb.client.post("/medias/upload-file", files={"file": ("big.bin", big, "application/octet-stream")},
                       headers=sb.headers())
    assert r.status_code == 413
    assert sb.get("/workflows/", params={"locationId": loc}).json()["workflows"][0]["name"]


def test_quota_control_scales_one_locations_day_and_starts_a_new_one(sb) -> None:  # type: ignore[no-untyped-def]
    """``/_sandbox/quota`` (issue 17's tests): one location's own daily limit, the 429 of its spent day
    with ``X-RateLimit-Daily-Remaining: 0`` and the sandbox's ``Date``, the other location untouched, and
    DELETE's new day."""
    import email.utils

    first, other = sb.locs
    assert sb.client.post("/_sandbox/quota", json={"location_id": first, "daily": 2}).status_code == 200
    assert sb.client.post("/_sandbox/quota", json={"location_id": first, "daily": 0}).status_code == 400
    codes = [sb.client.get(f"/locations/{first}", headers=sb.headers(0)) for _ in range(3)]
    assert [r.status_code for r in codes] == [200, 200, 429]
    spent = codes[-1]
    assert spent.headers["X-RateLimit-Daily-Remaining"] == "0"
    assert spent.headers["X-RateLimit-Limit-Daily"] == "2"
    assert email.utils.parsedate_to_datetime(spent.headers["Date"]).timestamp() == int(sb.clock.now)
    assert spent.json()["meta"]["limit"] == "daily"
    assert sb.client.get(f"/locations/{other}", headers=sb.headers(1)).status_code == 200  # its own day
    got = sb.client.get("/_sandbox/quota").json()
    assert got["daily_of"] == {first: 2} and got["used_today"][first] == 2
    assert sb.client.delete("/_sandbox/quota").json()["new_day"] is True
    assert sb.client.get(f"/locations/{first}", headers=sb.headers(0)).status_code == 200
