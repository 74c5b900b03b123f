"""httpx exceptions map at one boundary; tokens and PHI never reach logs or error messages."""

from __future__ import annotations

import logging

import httpx
import pytest

from dos2hl.errors import (
    AlreadyExistsError,
    AuthError,
    BadRequestError,
    DuplicateContactError,
    HighLevelError,
    TransportError,
    UnprocessableError,
)
from dos2hl.highlevel import HighLevelClient
from dos2hl.highlevel.errors import HTTPX_ERRORS, error_from_response, says_already_exists, translate_httpx
from dos2hl.highlevel.models import ContactCreate, ContactUpdate, CustomFieldInput

from .conftest import TOKEN, FakeHighLevel, reply

HTTPX_EXCEPTIONS = sorted((obj for name in httpx.__all__ if isinstance(obj := getattr(httpx, name), type)
                           and issubclass(obj, Exception)), key=lambda c: c.__name__)


def test_httpx_exceptions_found() -> None:
    assert len(HTTPX_EXCEPTIONS) > 20


@pytest.mark.parametrize("exc_cls", HTTPX_EXCEPTIONS, ids=lambda c: c.__name__)
def test_every_httpx_exception_is_mapped(exc_cls: type[Exception]) -> None:
    assert exc_cls in HTTPX_ERRORS, f"httpx.{exc_cls.__name__} has no explicit mapping"
    exc = exc_cls.__new__(exc_cls)
    err = translate_httpx(exc, method="GET", path="/contacts/{contactId}", stable_key="sk")
    assert isinstance(err, TransportError) and isinstance(err, HighLevelError)
    assert exc_cls.__name__ in str(err)


def test_timeouts_map_to_timeout_errors() -> None:
    for cls in (httpx.ConnectTimeout, httpx.ReadTimeout, httpx.WriteTimeout, httpx.PoolTimeout):
        assert isinstance(translate_httpx(cls("x"), method="GET", path="/", stable_key=None), TimeoutError)
    assert not translate_httpx(httpx.ConnectError("x"), method="GET", path="/", stable_key=None).sent
    assert translate_httpx(httpx.RemoteProtocolError("x"), method="GET", path="/", stable_key=None).sent


PHI = "ann.phi.4471@example.com"


@pytest.mark.parametrize("status", [400, 401, 422, 500])
def test_no_token_or_body_in_logs_or_errors(client: HighLevelClient, fake: FakeHighLevel, status: int,
                                            caplog: pytest.LogCaptureFixture) -> None:
    echo = {"statusCode": status, "message": [f"{PHI} is not valid", f"email {PHI} must be an email"],
            "meta": {"email": PHI}, "traceId": "tr-7"}
    fake.on("POST", "/contacts/", reply(status, echo))
    fake.on("PUT", "/contacts/c1", reply(status, echo))
    fake.on("POST", "/contacts/search", reply(200, {"contacts": [{"id": "x", "email": PHI}]}))
    body = ContactCreate(email=PHI, customFields=[CustomFieldInput(id="src", field_value=PHI)])
    errors: list[BaseException] = []
    with caplog.at_level(logging.DEBUG):
        for attempt in (lambda: client.create_contact(body, stable_key="sk-1",
                                                      lookup=client.contact_lookup("src", "P-9")),
                        lambda: client.update_contact("c1", ContactUpdate(email=PHI))):
            try:
                attempt()
            except HighLevelError as exc:
                errors.append(exc)
    assert errors and all(e.status == status for e in errors)  # type: ignore[attr-defined]
    text = caplog.text + "".join(f"{e!s}{e!r}{e.__cause__!r}{e.__context__!r}" for e in errors)
    assert "tr-7" in caplog.text and "/contacts/{contactId}" in caplog.text
    assert TOKEN not in text and PHI not in text and "4471" not in text
    assert all(TOKEN not in str(vars(e)) and PHI not in str(vars(e)) for e in errors)


def test_no_token_in_transport_errors(client: HighLevelClient, fake: FakeHighLevel,
                                      caplog: pytest.LogCaptureFixture) -> None:
    fake.on("GET", "/contacts/c1", httpx.ConnectError(f"boom {TOKEN}"))
    with caplog.at_level(logging.DEBUG), pytest.raises(TransportError) as info:
        client.get_contact("c1")
    assert TOKEN not in caplog.text and TOKEN not in str(info.value) and info.value.__cause__ is None
    # not merely hidden: the httpx error (and its request) is unreachable
    assert info.value.__context__ is None


# ---- HighLevel's own error texts (docs/highlevel-errors.md, each with its public source) --------------

_ASSOC = "b2be0bfb-dcb6-42e6-9132-d201c8877171"
REAL_ANSWERS = [
    # a relation twice (highlevel-api-docs#73): already there, so done
    (400, {"statusCode": 400, "error": "Bad Request",
           "message": "Could not create relation: duplicate relation of object Ids for given association "
                      f"{_ASSOC}"},
     AlreadyExistsError),
    (400, {"statusCode": 400, "message": "COULD NOT CREATE RELATION: Duplicate Relation of object Ids"},
     AlreadyExistsError),  # case and the words around the fragment do not matter
    (400, {"statusCode": 400, "message": ["duplicate relation of object Ids for given association x"]},
     AlreadyExistsError),  # NestJS's list form
    (400, {"statusCode": 400, "message": "Custom object with key custom_objects.xray already exists"},
     AlreadyExistsError),
    (400, {"statusCode": 400, "message": "This location does not allow duplicated contacts.",
           "meta": {"contactId": "c-dup", "contactName": "Ann Smith", "matchingField": "email"}},
     DuplicateContactError),
    (401, {"statusCode": 401, "message": "Invalid JWT"}, AuthError),  # highlevel-api-docs#213
    (401, {"statusCode": 401, "message": "The token is not authorized for this scope."}, AuthError),  # #319
    (401, {"statusCode": 401, "message": "This location is not accessible from this token."}, AuthError),
    (403, {"statusCode": 403, "message": "The token does not have access to this location."}, AuthError),
    (422, {"statusCode": 422, "error": "Unprocessable Entity",
           "message": ["property additionalEmails should not exist"]}, UnprocessableError),  # #262
    (400, {"statusCode": 400, "error": "Bad Request", "message": "Invalid field additional_phones",
           "traceId": "0398c85a"}, BadRequestError),  # #289: not "already there"
    (400, {"statusCode": 400, "message": "Association not found"}, BadRequestError),
    (400, {"statusCode": 400, "message": "Contact with id lookup not found"}, BadRequestError),
]


@pytest.mark.parametrize("status, body, cls", REAL_ANSWERS, ids=lambda v: v if isinstance(v, int) else None)
def test_highlevel_error_texts_are_classified(status: int, body: dict, cls: type) -> None:
    response = httpx.Response(status, json=body)
    err = error_from_response(response, method="POST", path="/associations/relations", stable_key="sk-1")
    assert type(err) is cls and err.status == status
    message = body["message"] if isinstance(body["message"], str) else body["message"][0]
    assert message not in f"{err!s}{err!r}{vars(err)}"  # the text is read, never kept
    assert "Ann Smith" not in f"{err!s}{err!r}{vars(err)}"
    if status == 422:
        assert err.fields == ("additionalEmails",)  # type: ignore[attr-defined]


def test_already_exists_needs_a_400() -> None:
    body = {"statusCode": 422, "message": ["duplicate relation of object Ids"]}
    assert not isinstance(error_from_response(httpx.Response(422, json=body), method="POST", path="/x",
                                              stable_key=None), AlreadyExistsError)
    assert not says_already_exists({"message": None}) and not says_already_exists("already exists")
