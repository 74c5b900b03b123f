"""The order in which ``make test`` (``-n 2 --dist loadfile``) hands test files to its two workers.

xdist's loadfile scheduler queues files by their number of tests, most first. Many of our longest files
hold one to three tests (a two-node Ray cluster, a real Prefect server and worker, the CLI's whole path),
so they came last, where the one that starts last sets the wall time while the other worker has
finished. ``HeavyFirst`` queues the files of ``HEAVY`` first, longest first (the longest-processing-time
rule), then every other file in xdist's own order, so the short files fill in around the long ones.

Tests that share a server are one module (a module-scoped fixture: the deployment and alerts tests on
one ``prefect server``, tests/integration/test_deployment.py), so loadfile keeps them on one worker.
``SAME_WORKER``: files that must not run at the same time go to one worker as one unit, one after the
other (as the two two-node Ray cluster modules did, which take a lock, one cluster per checkout,
``_ray_nodes``: on two workers, one of them sat waiting for the lock, idle; they are one module now).

Only the order and the grouping change: every test still runs once, its file's tests on one worker in
their own order. The seconds are a guide (measured on 2 cores with the other worker busy); a file
missing from ``HEAVY`` only runs later than it could.
"""

from __future__ import annotations

from collections import OrderedDict

from xdist.scheduler import LoadFileScheduling

# seconds per file (setup + call + teardown of each test, from `pytest --durations=0` in one `make test` run
# on 2 cores shared with other sessions' heavy work: 2172 s wall, 4156 s of tests; only the relative sizes
# matter). Files under 15 s are left to xdist's own order.
HEAVY: dict[str, float] = {
    "tests/integration/test_ray_cluster.py": 443,
    "tests/migrate/test_resume.py": 412,
    "tests/bulk/test_bulk_run.py": 304,
    "tests/migrate/test_demo_cli.py": 300,
    "tests/hostile/test_durable.py": 250,
    "tests/migrate/test_identity.py": 228,
    "tests/provision/test_gate.py": 172,
    "tests/migrate/test_delta.py": 161,
    "tests/pipeline/test_run_migration.py": 139,
    "tests/flows/test_migrate_flow_ray.py": 136,
    "tests/flows/test_migrate_flow.py": 123,
    "tests/bulk/test_packages.py": 112,
    # the deployment and the alerts tests share one prefect server (one module, so one worker): 110 s
    # before the alerts test joined; it adds its ~40 s (alone, with its own server, it took ~60 s)
    "tests/integration/test_deployment.py": 175,
    "tests/migrate/test_objects.py": 102,
    "tests/execution/test_every_location.py": 98,
    "tests/hostile/test_paths.py": 87,
    "tests/migrate/test_cli_path.py": 86,
    "tests/migrate/test_migrate.py": 78,
    "tests/migrate/test_every_field.py": 71,
    "tests/provision/test_provision.py": 67,
    "tests/mapping/test_match.py": 56,
    "tests/migrate/test_phi.py": 54,
    "tests/migrate/test_requests.py": 53,
    "tests/execution/test_pool.py": 50,
    "tests/test_golden_outputs.py": 46,
    "tests/hostile/test_outputs.py": 43,
    "tests/test_roundtrip.py": 42,
    "tests/hostile/test_reader.py": 31,
    "tests/migrate/test_requeue.py": 25,
    "tests/governor/test_actor.py": 24,
    "tests/governor/test_two_processes.py": 24,
    "tests/generate/test_contract.py": 19,
    "tests/migrate/test_plan_reference.py": 19,
    "tests/test_audit.py": 18,
    "tests/migrate/test_zones.py": 15,
    # issue 17's files (one loaded `make test`, 2026-12-05)
    "tests/migrate/test_progress_cli.py": 65,
    "tests/migrate/test_quota_cli.py": 55,
    "tests/migrate/test_quota_wait.py": 35,
    "tests/migrate/test_oauth_migrate.py": 30,
    "tests/flows/test_quota_reschedule.py": 8,
    "tests/highlevel/test_tokens_processes.py": 33,  # + the two processes on an s3:// store (~8 s)
    "tests/execution/test_report_html.py": 20,
}

# (empty since the two-node Ray cluster tests share one module, tests/integration/test_ray_cluster.py)
SAME_WORKER: dict[str, str] = {}


def weight(scope: str) -> float:
    """A work unit's expected seconds (0 for a file not listed in ``HEAVY``)."""
    return sum(s for f, s in HEAVY.items() if f == scope or SAME_WORKER.get(f) == scope)


class HeavyFirst(LoadFileScheduling):
    """Loadfile scheduling with ``HEAVY`` files queued first and ``SAME_WORKER`` files as one unit."""

    _ordered = False

    def _split_scope(self, nodeid: str) -> str:
        file = super()._split_scope(nodeid)
        return SAME_WORKER.get(file, file)

    def _assign_work_unit(self, node) -> None:  # type: ignore[no-untyped-def]
        if not self._ordered:  # the first assignment: the queue is complete (xdist's order, by count)
            self._ordered = True
            units = list(self.workqueue.items())
            heavy = sorted((u for u in units if weight(u[0]) > 0), key=lambda u: -weight(u[0]))
            self.workqueue = OrderedDict(heavy + [u for u in units if weight(u[0]) == 0])
        super()._assign_work_unit(node)
