"""infra/: the operator's files parse and say what the README promises (offline, fast)."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest
import yaml

INFRA = Path(__file__).resolve().parent.parent / "infra"
JSON_FILES = sorted(INFRA.glob("*.json"))


def _load(name: str):
    text = (INFRA / name).read_text()
    return json.loads(text) if name.endswith(".json") else yaml.safe_load(text)


def _as_list(v):
    return v if isinstance(v, list) else [v]


def _statements(name: str) -> list[dict]:
    return _load(name)["Statement"]


@pytest.mark.parametrize("path", JSON_FILES, ids=lambda p: p.name)
def test_every_json_file_parses(path: Path) -> None:
    assert isinstance(json.loads(path.read_text()), dict)


def test_json_files_found() -> None:
    names = {p.name for p in JSON_FILES}
    assert {"work-pool.json", "s3-bucket-policy.json", "s3-public-access-block.json",
            "iam-worker-policy.json", "s3-bucket-encryption.json"} <= names


# --- S3 bucket ---------------------------------------------------------------------------------------

def test_bucket_policy_denies_plain_http() -> None:
    hits = [s for s in _statements("s3-bucket-policy.json")
            if s["Effect"] == "Deny" and s["Principal"] == "*" and "s3:*" in _as_list(s["Action"])
            and s["Condition"].get("Bool", {}).get("aws:SecureTransport") == "false"]
    assert hits
    res = _as_list(hits[0]["Resource"])
    assert any(r.endswith("/*") for r in res) and any(not r.endswith("/*") for r in res)  # bucket and objects


def _deny_put_on(key: str) -> list[tuple[str, str]]:
    out = []
    for s in _statements("s3-bucket-policy.json"):
        if s["Effect"] == "Deny" and "s3:PutObject" in _as_list(s["Action"]):
            for op, cond in s.get("Condition", {}).items():
                if key in cond and op.startswith("StringNotEquals"):
                    out.append((op, cond[key]))
    return out


def test_bucket_policy_denies_puts_not_sse_kms_and_other_keys() -> None:
    assert ("StringNotEqualsIfExists", "aws:kms") in _deny_put_on("s3:x-amz-server-side-encryption")
    key_rules = _deny_put_on("s3:x-amz-server-side-encryption-aws-kms-key-id")
    assert key_rules and all(re.fullmatch(r"arn:aws:kms:[^:]+:[^:]+:key/.+", v) for _, v in key_rules)


def test_header_less_puts_and_multipart_parts_get_the_run_key_by_default() -> None:
    # UploadPart carries no SSE header, so the policy uses ...IfExists; the bucket default covers them
    rule = _load("s3-bucket-encryption.json")["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert rule["SSEAlgorithm"] == "aws:kms"
    assert {v for _, v in _deny_put_on("s3:x-amz-server-side-encryption-aws-kms-key-id")} == {
        rule["KMSMasterKeyID"]
    }


def test_bucket_policy_grants_nothing_to_everyone() -> None:
    for s in _statements("s3-bucket-policy.json"):
        if s["Effect"] == "Allow":
            p = s.get("Principal")
            assert p != "*" and not (isinstance(p, dict) and "*" in _as_list(p.get("AWS", [])))


def test_public_access_block_is_all_on() -> None:
    assert _load("s3-public-access-block.json") == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True}


# --- IAM --------------------------------------------------------------------------------------------

ALLOWED_ACTIONS = {"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:ListBucket",
                   "s3:AbortMultipartUpload",
                   "kms:GenerateDataKey", "kms:Decrypt"}


def test_iam_policy_is_least_privilege() -> None:
    # no statement needs Resource "*": every action here can be scoped to a bucket, prefix or key ARN
    stmts = _statements("iam-worker-policy.json")
    actions = set()
    for s in stmts:
        assert s["Effect"] == "Allow" and "NotAction" not in s and "NotResource" not in s
        acts = _as_list(s["Action"])
        assert all("*" not in a for a in acts), acts
        assert all(r != "*" and not r.endswith(":::*") for r in _as_list(s["Resource"]))
        actions |= set(acts)
    assert actions <= ALLOWED_ACTIONS
    assert {"kms:GenerateDataKey", "kms:Decrypt"} <= actions  # SSE-KMS and the PHI key's wrapping


def test_iam_policy_scopes_buckets_to_the_practice() -> None:
    by_sid = {s["Sid"]: s for s in _statements("iam-worker-policy.json")}
    assert all(a in {"s3:GetObject", "s3:ListBucket"} for s in (by_sid["ExportsList"], by_sid["ExportsRead"])
               for a in _as_list(s["Action"]))
    for sid in ("RunsList", "ExportsList"):
        assert by_sid[sid]["Condition"]["StringLike"]["s3:prefix"]
    assert by_sid["RunsObjects"]["Resource"].endswith("/REPLACE_PRACTICE/*")
    assert by_sid["RunKey"]["Resource"].startswith("arn:aws:kms:")


# --- Ray --------------------------------------------------------------------------------------------

def test_ray_cluster_launcher_config() -> None:
    cfg = _load("ray-cluster-aws.yaml")
    assert cfg["provider"]["type"] == "aws"
    assert cfg["head_node_type"] in cfg["available_node_types"] and len(cfg["available_node_types"]) >= 2
    assert any("uv sync --frozen" in c for c in cfg["setup_commands"])
    assert any("dos2hl governor start" in c for c in cfg["head_start_ray_commands"])
    text = (INFRA / "ray-cluster-aws.yaml").read_text()
    assert "REPLACE_" in text and not re.search(r"(?i)(aws_secret_access_key|token\s*[:=]\s*\S{16,})", text)


def _containers(spec: dict) -> list[dict]:
    return spec["template"]["spec"]["containers"]


def test_kuberay_raycluster() -> None:
    doc = _load("kuberay-raycluster.yaml")
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == "RayCluster"
    head, workers = doc["spec"]["headGroupSpec"], doc["spec"]["workerGroupSpecs"]
    assert workers and all(w["groupName"] and "maxReplicas" in w for w in workers)
    containers = _containers(head) + [c for w in workers for c in _containers(w)]
    for c in containers:
        assert c["resources"]["requests"]["cpu"] and c["resources"]["requests"]["memory"]
        names = {e["name"] for e in c["env"]}
        assert {"DOS2HL_S3_REGION", "DOS2HL_S3_KMS_KEY_ID", "DOS2HL_STORAGE"} <= names
    post = json.dumps(_containers(head)[0]["lifecycle"]["postStart"])
    assert "dos2hl governor start" in post


def test_kuberay_tokens_only_from_secrets() -> None:
    doc = _load("kuberay-raycluster.yaml")
    groups = [doc["spec"]["headGroupSpec"], *doc["spec"]["workerGroupSpecs"]]
    tokens = 0
    for g in groups:
        for c in _containers(g):
            for e in c["env"]:
                if "TOKEN" in e["name"] or "SECRET" in e["name"] or "PASSWORD" in e["name"]:
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], e
                    tokens += e["name"].startswith("DOS2HL_TOKEN_")
    assert tokens >= 1  # one variable per location, as locations.yaml's token_env


# --- Prefect work pool ---------------------------------------------------------------------------------

def test_work_pool_template_shape() -> None:
    t = _load("work-pool.json")
    assert set(t) == {"job_configuration", "variables"}
    env = t["job_configuration"]["env"]
    assert "DOS2HL_GOVERNOR_ADDRESS" in env and env["RAY_USAGE_STATS_ENABLED"] == "0"
    assert env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    props = t["variables"]["properties"]
    for placeholder in re.findall(r"\{\{\s*(\w+)\s*\}\}", json.dumps(t["job_configuration"])):
        assert placeholder in props, placeholder


def test_work_pool_template_renders_for_the_process_worker() -> None:
    from prefect.workers.process import ProcessJobConfiguration

    t = _load("work-pool.json")
    cfg = asyncio.run(ProcessJobConfiguration.from_template_and_values(
        t, {"governor_address": "10.0.0.5:6379", "env": {"EXTRA": "1"}}))
    assert cfg.env["DOS2HL_GOVERNOR_ADDRESS"] == "10.0.0.5:6379"
    assert cfg.env["EXTRA"] == "1" and cfg.env["DOS2HL_STORAGE"].startswith("s3://")  # merged, not replaced
    assert str(cfg.working_dir) == cfg.env["DOS2HL_PROJECT_DIR"]


# --- README -----------------------------------------------------------------------------------------

def test_readme_mentions_every_infra_file() -> None:
    readme = (INFRA / "README.md").read_text()
    missing = [p.name for p in INFRA.iterdir() if p.is_file() and p.name != "README.md"
               and p.name not in readme]
    assert not missing
    assert len(readme.splitlines()) <= 130
