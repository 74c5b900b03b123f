"""Issue 17: which HighLevel failures pause a location (systemic) and which stay one record's, from the
texts in docs/highlevel-errors.md."""

from __future__ import annotations

import httpx
import pytest

from dos2hl.errors import AuthError, RequestTimeoutError, ServerError, TransportError, UnprocessableError
from dos2hl.highlevel.errors import error_from_response
from dos2hl.highlevel.systemic import OutageStreak, is_outage, is_systemic, pause_reason

ANSWERS = [  # status, body, cause, systemic
    (401, {"statusCode": 401, "message": "Invalid JWT"}, "token", True),  # highlevel-api-docs#213
    (401, {"statusCode": 401, "message": "Invalid token: access token is invalid"}, "token", True),  # DTO
    (401, {"statusCode": 401, "message": "The token is not authorized for this scope.",
           "error": "Unauthorized"}, "scope", True),  # #319
    (403, {"statusCode": 403, "message": "The token does not have access to this location."}, "location",
     True),  # #213, n8n#11353
    (401, {"statusCode": 401, "message": "This location is not accessible from this token."}, "location",
     True),  # n8n#37571
    (401, {"message": "The user does not exist.", "error": "Unauthorized", "statusCode": 401}, "user",
     False),  # #205: one record's reference
    (401, {"statusCode": 401, "message": "401 IAM error"}, "path", False),  # #306: one endpoint's path
    (401, {"status": 401, "message": "You do not have access to this feature! Please contact the admin!",
           "name": "HttpException", "traceId": "t-1"}, "feature", False),  # template#13
    (401, {"statusCode": 401, "message": "Something new"}, "unknown", True),  # unknown: the safe side
    (401, None, "unknown", True),  # no body at all
    (403, {"statusCode": 403, "message": ["THE TOKEN DOES NOT HAVE ACCESS TO THIS LOCATION."]}, "location",
     True),  # case, and NestJS's list form
]


@pytest.mark.parametrize("status, body, cause, systemic", ANSWERS)
def test_a_401_or_403_pauses_only_when_it_is_about_the_token_its_scope_or_the_location(
        status: int, body: dict | None, cause: str, systemic: bool) -> None:
    response = httpx.Response(status, json=body) if body is not None else httpx.Response(status)
    err = error_from_response(response, method="POST", path="/contacts/", stable_key="sk-1")
    assert isinstance(err, AuthError) and err.cause == cause
    assert is_systemic(err) is systemic
    if body is not None:
        message = body["message"] if isinstance(body["message"], str) else body["message"][0]
        assert message not in f"{err!s}{err!r}{vars(err)}"  # the text is read, never kept
    assert pause_reason(err) == f"HighLevel answered {status} ({cause}) on POST /contacts/"


@pytest.mark.parametrize("exc, outage", [
    (ServerError(503, method="POST", path="/contacts/"), True),
    (TransportError("no answer", sent=True, method="POST", path="/contacts/"), True),
    (RequestTimeoutError("slow", sent=True, method="POST", path="/contacts/"), True),
    (UnprocessableError(422, method="POST", path="/contacts/"), False),
    (AuthError(401, cause="user", method="GET", path="/users/{userId}"), False),
])
def test_5xx_and_no_answer_are_outages_and_nothing_else(exc: Exception, outage: bool) -> None:
    assert is_outage(exc) is outage
    assert not is_systemic(exc) or isinstance(exc, AuthError)  # an outage alone never pauses


def test_an_outage_row_pauses_at_its_limit_and_any_answer_ends_it() -> None:
    s = OutageStreak(3)
    assert [s.failed(), s.failed()] == [False, False]
    s.ended()  # a success, or a 422: the row is broken
    assert [s.failed(), s.failed(), s.failed()] == [False, False, True]
    last = ServerError(502, method="POST", path="/objects/{schemaKey}/records")
    assert pause_reason(last, 3) == ("3 consecutive HighLevel failures (5xx or no answer) after retries; "
                                     "last: ServerError 502 on POST /objects/{schemaKey}/records")
    with pytest.raises(ValueError):
        OutageStreak(0)
