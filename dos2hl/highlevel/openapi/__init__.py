"""HighLevel's own OpenAPI specs (CC0, byte-identical to upstream) and the loader that patches them.

The files under ``apps/`` and ``common/`` are never edited: a test compares them with
``../shared/highlevel-openapi``. What is wrong in them (NOTES.md §8) is fixed in memory, in two
layers, each time a spec is loaded:

* systematic defects, fixed by code here because they recur in every file: ``name``/``in`` on http
  security schemes, path parameters declared ``required: false`` or not declared at all, the
  ``../common/common-schemas.json`` references (inlined so a spec is one self-contained dict), the
  production-only ``servers``, and the 403/404/429/5xx answers no spec declares;
* operation- and schema-specific defects, fixed by ``overlay.yaml`` (a list of JSON-pointer
  ``set``/``merge``/``remove`` actions per file, each with the reason it exists).
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["SPEC_DIR", "SPEC_FILES", "SERVER_URL", "load_spec", "raw_spec", "overlay"]

SPEC_DIR = Path(__file__).resolve().parent
SERVER_URL = "http://highlevel.sandbox"  # the one server every patched spec declares
SPEC_FILES = ("contacts", "locations", "custom-fields", "objects", "associations", "opportunities",
              "calendars", "users", "medias", "workflows", "companies")
_COMMON_REF = "../common/common-schemas.json#/components/schemas/"
_METHODS = ("get", "put", "post", "delete", "patch")
_PARAM = re.compile(r"{([^}]+)}")
# Answers the real API gives that no spec declares: NOTES.md §5 (403, 429) and the sandbox's own
# 404 for unknown ids and 5xx faults. All use the common error DTOs.
_EXTRA_RESPONSES = {"403": "BadRequestDTO", "404": "BadRequestDTO", "429": "BadRequestDTO",
                    "422": "UnprocessableDTO", "500": "BadRequestDTO", "502": "BadRequestDTO",
                    "503": "BadRequestDTO", "413": "BadRequestDTO"}


def raw_spec(name: str) -> dict[str, Any]:
    """The spec file ``apps/<name>.json`` exactly as HighLevel publishes it (a fresh copy)."""
    return copy.deepcopy(_read_json(SPEC_DIR / "apps" / f"{name}.json"))


@functools.lru_cache(maxsize=None)
def _read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


@functools.lru_cache(maxsize=1)
def overlay() -> dict[str, list[dict[str, Any]]]:
    """The project-owned patch list, ``{spec name: [action, ...]}``."""
    import yaml

    data = yaml.safe_load((SPEC_DIR / "overlay.yaml").read_text(encoding="utf-8"))
    files: dict[str, list[dict[str, Any]]] = data.get("files", {})
    return files


@functools.lru_cache(maxsize=None)
def load_spec(name: str) -> dict[str, Any]:
    """The patched spec for ``apps/<name>.json``; cached, treat it as read-only."""
    spec = raw_spec(name)
    _inline_common(spec)
    _fix_security_schemes(spec)
    _fix_path_parameters(spec)
    _add_undeclared_responses(spec)
    spec["servers"] = [{"url": SERVER_URL}]
    for action in overlay().get(name, []):
        _apply(spec, action)
    return spec


def _inline_common(spec: dict[str, Any]) -> None:
    """Copy the common error DTOs into the spec and point the relative ``$ref``s at them."""
    common = _read_json(SPEC_DIR / "common" / "common-schemas.json")["components"]["schemas"]
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for key, value in common.items():
        schemas.setdefault(key, copy.deepcopy(value))

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_COMMON_REF):
                node["$ref"] = "#/components/schemas/" + ref[len(_COMMON_REF):]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)


def _fix_security_schemes(spec: dict[str, Any]) -> None:
    for scheme in spec.get("components", {}).get("securitySchemes", {}).values():
        if scheme.get("type") == "http":
            scheme.pop("name", None)
            scheme.pop("in", None)


def _fix_path_parameters(spec: dict[str, Any]) -> None:
    """Path parameters are always required, and every ``{name}`` in a template is declared."""
    for template, item in spec.get("paths", {}).items():
        names = _PARAM.findall(template)
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = op.setdefault("parameters", [])
            declared = set()
            for p in params:
                if p.get("in") == "path":
                    p["required"] = True
                    declared.add(p["name"])
            for missing in names:
                if missing not in declared:
                    params.append({"name": missing, "in": "path", "required": True,
                                   "schema": {"type": "string"}})


def _add_undeclared_responses(spec: dict[str, Any]) -> None:
    for item in spec.get("paths", {}).values():
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            responses = op.setdefault("responses", {})
            for code, dto in _EXTRA_RESPONSES.items():
                responses.setdefault(code, {
                    "description": "sandbox: answer the real API gives but the spec omits",
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{dto}"}}},
                })


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise ValueError(f"overlay pointer must start with '/': {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _apply(spec: dict[str, Any], action: dict[str, Any]) -> None:
    """Apply one overlay action; a pointer to nothing is an error (the overlay went stale)."""
    kind = next(k for k in ("set", "merge", "remove") if k in action)
    parts = _pointer(action[kind])
    parent: Any = spec
    for part in parts[:-1]:
        parent = parent[int(part)] if isinstance(parent, list) else parent[part]
    last = parts[-1]
    if kind == "set":
        parent[last] = copy.deepcopy(action["value"])
    elif kind == "merge":
        _deep_merge(parent[last], action["value"])
    else:
        del parent[last]


def _deep_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
