"""The central rate governor: keeps every worker under each location's burst and daily limits.

``core`` is the arithmetic (pure, injectable clock), ``local.LocalGovernor`` the in-process
``PermitSource``, ``actor`` the shared Ray actor and its ``GovernorHandle`` facade (the only module of
dos2hl that imports Ray; import it explicitly: ``from dos2hl.governor.actor import connect``).
"""

from .core import DEFAULT_WEIGHTS, Lease, Limits, RateGovernor, Status, load_snapshot, save_snapshot
from .local import LocalGovernor

__all__ = ["DEFAULT_WEIGHTS", "Lease", "Limits", "LocalGovernor", "RateGovernor", "Status",
           "load_snapshot", "save_snapshot"]
