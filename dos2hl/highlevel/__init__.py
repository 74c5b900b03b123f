"""The HighLevel (LeadConnector) API v2 client: typed, permit-governed, retried, never logs PHI.

``HighLevelClient`` is the entry point; ``PermitSource`` is the seam for the rate governor;
``RetryPolicy`` holds the retry knobs. Errors live in ``dos2hl.errors`` (``HighLevelError`` subtree).
"""

from __future__ import annotations

from ._core import API_VERSION, CALENDARS_API_VERSION, DEFAULT_TIMEOUT, Lookup, Outcome, Written, version_for
from .client import MAX_UPLOAD_BYTES, HighLevelClient
from .permits import PermitSource, UnlimitedPermits
from .retry import DEFAULT_RETRY, NO_RETRY, RetryPolicy
from .tally import CLASSES, Tally, counting_as, snapshot

__all__ = [
    "API_VERSION", "CALENDARS_API_VERSION", "CLASSES", "Tally", "counting_as", "snapshot", "DEFAULT_RETRY",
    "DEFAULT_TIMEOUT", "HighLevelClient", "Lookup",
    "MAX_UPLOAD_BYTES", "NO_RETRY", "Outcome", "PermitSource", "RetryPolicy", "UnlimitedPermits", "Written",
    "version_for",
]
