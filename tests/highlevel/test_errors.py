"""httpx exceptions map at one boundary; tokens and PHI never reach logs or error messages."""

from __future__ import annotations

import logging

import httpx
import pytest

from dos2hl.errors import HighLevelError, TransportError
from dos2hl.highlevel import HighLevelClient
from dos2hl.highlevel.errors import HTTPX_ERRORS, translate_httpx
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
