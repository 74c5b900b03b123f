"""A bounded client for an OpenAI-compatible chat endpoint (``POST {url}/chat/completions``).

The model-backed proposer sends one prompt and needs one JSON object back. Everything is bounded: a
timeout per attempt, a few attempts with exponential backoff (only for timeouts, connection failures,
429 and 5xx), a maximum response size read from the stream. Any failure becomes ``ModelUnavailable``
whose ``reason`` is a short fixed phrase (``HTTP 503``, ``timeout``, ``invalid JSON``): never the
response's content, the request, the URL or the key. The key is a ``SecretStr`` read only to build the
``Authorization`` header.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

__all__ = ["Endpoint", "ModelUnavailable", "chat_json"]

#: attempts after the first one, for a timeout, a connection failure, a 429 or a 5xx
RETRIES = 2
#: the first backoff (doubled each attempt, capped at BACKOFF_CAP seconds; a Retry-After within it wins)
BACKOFF = 0.5
BACKOFF_CAP = 8.0
#: the largest response body read (a mapping answer of a few hundred columns is ~40 kB)
MAX_RESPONSE_BYTES = 1_000_000


#: parameters an endpoint may refuse (HTTP 400 naming them): the request is sent again without them
_OPTIONAL = ("response_format", "temperature")


class ModelUnavailable(Exception):
    """The endpoint gave no usable answer; ``reason`` is a short phrase without any content."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: base URL (``.../v1``), model name, key (None: no Authorization header)."""

    url: str
    model: str
    key: SecretStr | None = field(default=None, repr=False)
    timeout: float = 60.0
    retries: int = RETRIES
    max_response_bytes: int = MAX_RESPONSE_BYTES

    @property
    def chat_url(self) -> str:
        return self.url.rstrip("/") + "/chat/completions"


def _headers(ep: Endpoint) -> dict[str, str]:
    h = {"Content-Type": "application/json", "Accept": "application/json"}
    if ep.key is not None and ep.key.get_secret_value():
        h["Authorization"] = f"Bearer {ep.key.get_secret_value()}"
    return h


def _read_bounded(resp: httpx.Response, limit: int) -> bytes:
    buf = bytearray()
    for chunk in resp.iter_bytes():
        buf += chunk
        if len(buf) > limit:
            raise ModelUnavailable("response too large")
    return bytes(buf)


def _content(body: bytes) -> str:
    """The first choice's message content of a chat completion (the text the model wrote)."""
    try:
        doc = json.loads(body)
        content = doc["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise ModelUnavailable("not a chat completion") from None
    if not isinstance(content, str) or not content.strip():
        raise ModelUnavailable("empty answer")
    return content


def _retry_after(resp: httpx.Response) -> float | None:
    try:
        return float(resp.headers.get("Retry-After", ""))
    except ValueError:
        return None


def chat_json(ep: Endpoint, messages: list[dict[str, str]], *, http: httpx.Client,
              sleep: Callable[[float], None] = time.sleep) -> str:
    """Send ``messages`` (temperature 0, JSON answers asked for) and return the model's text.

    A 400 naming ``response_format`` or ``temperature`` is retried once without that parameter: some
    OpenAI-compatible servers have no JSON mode (the prompt asks for JSON anyway), and some models
    accept only their default temperature."""
    payload: dict[str, Any] = {"model": ep.model, "messages": messages, "temperature": 0,
                               "response_format": {"type": "json_object"}}
    attempt = 0
    while True:
        try:
            with http.stream("POST", ep.chat_url, json=payload, headers=_headers(ep),
                               timeout=ep.timeout) as resp:
                body = _read_bounded(resp, ep.max_response_bytes)
                status = resp.status_code
                wait = _retry_after(resp)
        except httpx.TimeoutException:
            status, body, wait, why = 0, b"", None, "timeout"
        except httpx.TransportError:
            status, body, wait, why = 0, b"", None, "connection failed"
        except (httpx.RequestError, httpx.InvalidURL):  # a broken body encoding, an unusable URL
            raise ModelUnavailable("request failed") from None
        if 200 <= status < 300:
            return _content(body)
        optional = [k for k in _OPTIONAL if k in payload and k.encode() in body] if status == 400 else []
        if optional:
            del payload[optional[0]]
            continue
        if status:
            why = f"HTTP {status}"
        if attempt >= ep.retries or (status and status != 429 and status < 500):
            raise ModelUnavailable(why)
        backoff = min(BACKOFF * 2 ** attempt, BACKOFF_CAP)
        sleep(min(wait, BACKOFF_CAP) if wait is not None and wait >= 0 else backoff)
        attempt += 1
