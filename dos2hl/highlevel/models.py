"""Typed bodies for the HighLevel operations dos2hl uses.

Requests forbid unknown fields (HighLevel's NestJS whitelist answers 422 to any property it does not
know, e.g. ``dateAdded``), so a typo fails here, before a permit is spent. Responses allow extra fields
(HighLevel adds them freely). ``hide_input_in_errors``: a validation error never quotes a value (PHI).
``locationId`` may be left out of a request: the client fills in its own location.
"""

from __future__ import annotations

from ._bodies import DataType, Request, Response
from .request_bodies import *  # noqa: F403 - the face re-exports every body
from .request_bodies import __all__ as _requests
from .response_bodies import *  # noqa: F403
from .response_bodies import __all__ as _responses

__all__ = ["DataType", "Request", "Response", *_requests, *_responses]
