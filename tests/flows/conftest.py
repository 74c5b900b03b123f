"""One Prefect test harness (a temporary API server) per test session for the flow tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def prefect_harness():  # type: ignore[no-untyped-def]
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield
