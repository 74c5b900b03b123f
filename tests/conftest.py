"""Shared fixtures: a small generated practice and moto's S3 server (started by the tests)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
# a test practice has tens of patients per location: 4 shards each still runs shards side by side and
# resumes some while others are done, at a quarter of the per-shard reads of the default 16
os.environ.setdefault("DOS2HL_SHARDS", "4")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile`` (make test): the long files first, the two-node Ray files on one worker
    (tests/_xdist_order.py). Any other mode: xdist's own scheduler."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests._xdist_order import HeavyFirst

    return HeavyFirst(config, log)  # type: ignore[arg-type]


@pytest.fixture(scope="session", autouse=True)
def _world_templates(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Where ``make_world`` (tests/migrate/conftest.py) keeps the worlds it builds once per session: the
    session's temporary folder, the parent of each xdist worker's (``popen-gwN``), so both workers share
    them; pytest removes it with its old temporary folders."""
    base = tmp_path_factory.getbasetemp()
    os.environ["DOS2HL_TEST_WORLDS"] = str((base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base)
                                           / "dos2hl-worlds")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """moto's S3 server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(s3_server: str) -> Iterator[str]:
    """A fresh bucket on the moto server; yields its name."""
    import uuid

    import boto3

    name = f"dos2hl-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=name)
    yield name


@pytest.fixture(scope="session")
def practice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small typical-mess practice (shared by the session; do not modify it)."""
    from dos2hl.generate import GenerateParams, generate

    out = tmp_path_factory.mktemp("practice")
    generate(out, GenerateParams(seed=7, patients=400, mess="typical"))
    return out
