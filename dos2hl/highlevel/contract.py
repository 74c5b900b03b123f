"""The HighLevel API v2 contract: HighLevel's specs plus our overlay, as validators both sides use.

The sandbox validates every request it receives and (in tests) every response it sends; the client
tests validate every request the client builds. One openapi-core validator per spec file, because
merging the files collides on operationIds and component names (NOTES.md §7.7). Specs load lazily
and are cached: the first validation against a file costs a few milliseconds, later ones nothing.

Beyond openapi-core, two rules the real API applies and the specs do not say:
* unknown body properties are rejected, NestJS-whitelist style (``property X should not exist``),
  found by walking the body schema (``$ref``, ``allOf``, ``anyOf``/``oneOf`` as the union of their
  properties; an object schema without ``properties`` accepts anything);
* every error is reported as a NestJS 422 message list (``unprocessable(messages)``).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from .openapi import SERVER_URL, load_spec

__all__ = [
    "Operation", "API_VERSION", "CALENDARS_VERSION", "SPEC_BY_PREFIX", "find_operation",
    "operation_by_id", "validate_request", "validate_response", "unprocessable",
    "validate_httpx_request", "validate_httpx_response", "version_for_path", "spec_for_path",
    "unknown_properties",
]

API_VERSION = "2021-07-28"
CALENDARS_VERSION = "2021-04-15"
# First path segment -> spec file (NOTES.md §7: route by prefix, one validator per file).
SPEC_BY_PREFIX = {
    "contacts": "contacts", "locations": "locations", "custom-fields": "custom-fields",
    "objects": "objects", "associations": "associations", "opportunities": "opportunities",
    "calendars": "calendars", "users": "users", "medias": "medias", "workflows": "workflows",
    "companies": "companies",
}
_METHODS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Operation:
    """One spec operation, matched against a concrete request path."""

    spec: str  # spec file stem, e.g. "contacts"
    method: str  # upper case
    template: str  # the path as the spec spells it, e.g. "/contacts/{contactId}"
    operation_id: str
    scopes: tuple[str, ...]  # scopes the spec's security requirement names (may be empty)
    schemes: tuple[str, ...]  # security scheme names, e.g. ("bearer",) or ("Agency-Access",)
    version: str  # the Version header value the operation accepts
    path_params: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Unique across files (operationIds are not): ``<spec>:<operationId>``."""
        return f"{self.spec}:{self.operation_id}"


@dataclass(frozen=True)
class _Route:
    template: str
    regex: re.Pattern[str]
    literal_segments: int
    ops: Mapping[str, Operation]  # method -> operation without path params


@functools.lru_cache(maxsize=None)
def _routes(spec_name: str) -> tuple[_Route, ...]:
    spec = load_spec(spec_name)
    routes = []
    for template, item in spec["paths"].items():
        ops = {}
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            schemes: list[str] = []
            scopes: list[str] = []
            for requirement in op.get("security") or []:
                for scheme, names in requirement.items():
                    schemes.append(scheme)
                    scopes.extend(n for n in names if n not in scopes)
            version = next((p["schema"]["enum"][0] for p in op.get("parameters", [])
                            if p.get("in") == "header" and p.get("name") == "Version"
                            and p.get("schema", {}).get("enum")), API_VERSION)
            ops[method.upper()] = Operation(spec_name, method.upper(), template, op["operationId"],
                                            tuple(scopes), tuple(schemes), version)
        norm = template.rstrip("/") or "/"
        pattern = re.sub(r"{([^}]+)}", lambda m: f"(?P<{_group(m.group(1))}>[^/]+)", re.escape(norm)
                         .replace(r"\{", "{").replace(r"\}", "}"))
        literal = sum(1 for seg in norm.split("/") if seg and "{" not in seg)
        routes.append(_Route(template, re.compile(f"^{pattern}$"), literal, ops))
    # Literal paths win over templated ones (/contacts/search before /contacts/{contactId}).
    routes.sort(key=lambda r: (-r.literal_segments, r.template.count("{")))
    return tuple(routes)


def _group(name: str) -> str:
    return re.sub(r"\W", "_", name)


def spec_for_path(path: str) -> str | None:
    """The spec file serving ``path`` (by its first segment), or None."""
    first = path.lstrip("/").split("/", 1)[0]
    return SPEC_BY_PREFIX.get(first)


def version_for_path(path: str) -> str:
    """The Version header a path needs: 2021-04-15 for calendars, 2021-07-28 elsewhere."""
    return CALENDARS_VERSION if spec_for_path(path) == "calendars" else API_VERSION


def find_operation(method: str, path: str) -> Operation | None:
    """The operation serving ``method path``; trailing slashes are ignored (NOTES.md §1).

    None when no spec path matches, or when the path matches but not with this method.
    """
    name = spec_for_path(path)
    if name is None:
        return None
    norm = path.rstrip("/") or "/"
    method = method.upper()
    for route in _routes(name):
        match = route.regex.match(norm)
        if match is None or method not in route.ops:
            continue
        op = route.ops[method]
        names = re.findall(r"{([^}]+)}", route.template)
        params = {n: match.group(_group(n)) for n in names}
        return Operation(op.spec, op.method, op.template, op.operation_id, op.scopes, op.schemes,
                         op.version, params)
    return None


@functools.lru_cache(maxsize=None)
def operation_by_id(spec_name: str, operation_id: str) -> Operation:
    """Look an operation up by spec and operationId (for tests and the client)."""
    for route in _routes(spec_name):
        for op in route.ops.values():
            if op.operation_id == operation_id:
                return op
    raise KeyError(f"{spec_name}:{operation_id}")


@functools.lru_cache(maxsize=None)
def _openapi(spec_name: str) -> Any:
    from openapi_core import Config, OpenAPI

    return OpenAPI.from_dict(load_spec(spec_name), config=Config(spec_validator_cls=None))


class _Request:
    """The openapi-core request protocol over plain values; path_pattern skips its path finder."""

    def __init__(self, op: Operation, headers: Mapping[str, str], query: Iterable[tuple[str, str]],
                 body: bytes | None, content_type: str) -> None:
        from openapi_core.datatypes import RequestParameters
        from werkzeug.datastructures import Headers, ImmutableMultiDict

        self.host_url = SERVER_URL
        self.path = op.template
        self.path_pattern = op.template
        self.method = op.method.lower()
        self.body = body
        self.content_type = content_type
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(query)),
            header=Headers(
                [
                    *((k, v) for k, v in headers.items() if k.lower() != "authorization"),
                    ("Authorization", "Bearer sandbox-validation"),
                ]
            ),
            path=dict(op.path_params),
        )


class _Response:
    def __init__(self, status: int, data: bytes, content_type: str, headers: Mapping[str, str]) -> None:
        from werkzeug.datastructures import Headers

        self.status_code = status
        self.data = data
        self.content_type = content_type
        self.headers = Headers(list(headers.items()))


def validate_request(op: Operation, *, headers: Mapping[str, str], query: Iterable[tuple[str, str]] = (),
                     body: bytes | None = None, content_type: str = "application/json") -> list[str]:
    """Problems with a request, as NestJS-style messages; empty when it satisfies the contract.

    ``headers`` must hold the Version header (any case). The Authorization header is replaced
    before openapi-core sees it (auth is the sandbox's job), so no token reaches a message.
    """
    req = _Request(op, headers, query, body, content_type)
    # the validator, not the unmarshaller: the same errors without building the typed values, which cost
    # three quarters of the time (~4 ms a request; the sandbox checks every request of a test's run)
    groups = [_format_request_error(e) for e in _openapi(op.spec).request_validator.iter_errors(req)]
    problems = [p for group in groups for p in group]
    if body and content_type.split(";")[0].strip() == "application/json":
        try:
            value = json.loads(body)
        except ValueError:
            return ["body must be valid JSON"]
        schema = _body_schema(op)
        if schema is not None:
            problems.extend(p for p in unknown_properties(load_spec(op.spec), schema, value)
                            if p not in problems)
    return problems


def validate_response(op: Operation, status: int, body: bytes, *, content_type: str = "application/json",
                      headers: Mapping[str, str] | None = None) -> list[str]:
    """Problems with a response to ``op``: an undeclared status or a body outside its schema."""
    req = _Request(op, {"Version": op.version}, [], None, "application/json")
    resp = _Response(status, body, content_type, headers or {})
    out: list[str] = []
    for err in _openapi(op.spec).response_validator.iter_errors(req, resp):
        cause = err.__cause__
        schema_errors = getattr(cause, "schema_errors", None)
        if schema_errors:
            out.extend(f"response {status}: {_dotted(se.absolute_path) or '(body)'}: {se.message[:200]}"
                       for se in schema_errors)
        else:
            out.append(f"response {status}: {type(err).__name__}: {str(err)[:200]}")
    return out


def unprocessable(messages: list[str]) -> dict[str, Any]:
    """The NestJS 422 body the real API sends for validation failures (NOTES.md §5)."""
    return {"statusCode": 422, "message": list(messages), "error": "Unprocessable Entity"}


def _body_schema(op: Operation) -> dict[str, Any] | None:
    spec = load_spec(op.spec)
    body = spec["paths"][op.template][op.method.lower()].get("requestBody")
    if not body:
        return None
    schema: dict[str, Any] | None = body.get("content", {}).get("application/json", {}).get("schema")
    return schema


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 20:
        node: Any = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        schema, seen = node, seen + 1
    return schema


def _declared(spec: dict[str, Any], schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """(properties declared anywhere in the schema, whether other keys are allowed)."""
    schema = _resolve(spec, schema)
    props: dict[str, Any] = dict(schema.get("properties") or {})
    open_ = schema.get("additionalProperties") not in (None, False)
    composite = False
    for key in ("allOf", "anyOf", "oneOf"):
        for sub in schema.get(key) or []:
            if set(_resolve(spec, sub)) <= {"required", "description"}:
                continue  # a constraint-only branch (anyOf: [{required: [id]}, ...]) adds no keys
            sub_props, sub_open = _declared(spec, sub)
            composite = composite or bool(sub_props)
            for name, value in sub_props.items():
                props.setdefault(name, value)
            open_ = open_ or sub_open
    if not props and not composite:
        open_ = True  # an object schema that declares nothing accepts anything
    return props, open_


def unknown_properties(spec: dict[str, Any], schema: dict[str, Any], value: Any,
                       prefix: str = "") -> list[str]:
    """NestJS whitelist messages for keys the schema does not declare, at any depth."""
    schema = _resolve(spec, schema)
    out: list[str] = []
    if isinstance(value, dict):
        props, open_ = _declared(spec, schema)
        for key, sub in value.items():
            if key in props:
                out.extend(unknown_properties(spec, props[key], sub, f"{prefix}{key}."))
            elif not open_:
                out.append(f"{prefix}property {key} should not exist")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            out.extend(unknown_properties(spec, schema["items"], item, f"{prefix}{i}."))
    return out


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


_TYPE_WORDS = {"string": "a string", "boolean": "a boolean value", "integer": "an integer number",
               "number": "a number conforming to the specified constraints", "array": "an array",
               "object": "an object"}


def _format_request_error(err: Exception) -> list[str]:
    name = getattr(err, "name", None)
    where = getattr(err, "location", None)
    cause = err.__cause__
    kind = type(err).__name__
    if kind == "MissingRequiredParameter":
        return [f"{name} header is required" if where == "header" else f"{name} should not be empty"]
    if kind == "MissingRequiredRequestBody":
        return ["request body should not be empty"]
    schema_errors = getattr(cause, "schema_errors", None)
    if schema_errors:
        label = f"{name} header" if where == "header" else name
        return [_schema_message(se, label) for se in schema_errors]
    if cause is not None and kind in ("InvalidParameter", "InvalidRequestBody"):
        return [f"{name or 'body'} is invalid ({type(cause).__name__})"]
    return [f"{kind}: {str(err)[:200]}" if str(err) else kind]


def _schema_message(se: Any, label: str | None) -> str:
    path = _dotted(se.absolute_path)
    subject = ".".join(p for p in (label, path) if p) or "body"
    v, arg = se.validator, se.validator_value
    if v == "required":
        missing = se.message.split("'")[1] if "'" in se.message else "property"
        return f"{path + '.' if path else ''}{missing} should not be empty"
    if v == "type":
        return f"{subject} must be {_TYPE_WORDS.get(arg, arg)}"
    if v == "enum":
        return f"{subject} must be one of the following values: {', '.join(map(str, arg))}"
    if v == "maximum":
        return f"{subject} must not be greater than {arg}"
    if v == "minimum":
        return f"{subject} must not be less than {arg}"
    if v == "maxLength":
        return f"{subject} must be shorter than or equal to {arg} characters"
    if v == "maxItems":
        return f"{subject} must contain no more than {arg} elements"
    if v in ("anyOf", "oneOf"):
        return f"{subject} must match one of the allowed shapes"
    return f"{subject} {se.message[:200]}"


def validate_httpx_request(request: Any) -> list[str]:
    """Contract problems of an ``httpx.Request`` (for client tests); unknown paths are a problem."""
    op = find_operation(request.method, request.url.path)
    if op is None:
        return [f"no operation for {request.method} {request.url.path}"]
    return validate_request(op, headers=dict(request.headers), query=request.url.params.multi_items(),
                            body=request.content or None,
                            content_type=request.headers.get("content-type", "application/json"))


def validate_httpx_response(response: Any) -> list[str]:
    """Contract problems of an ``httpx.Response`` to a request on a known operation."""
    request = response.request
    op = find_operation(request.method, request.url.path)
    if op is None:
        return [f"no operation for {request.method} {request.url.path}"]
    return validate_response(op, response.status_code, response.content,
                             content_type=response.headers.get("content-type", "application/json"),
                             headers=dict(response.headers))
