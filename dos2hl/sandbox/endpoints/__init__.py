"""Endpoint handlers, one module per API family; importing this package registers them all."""

from __future__ import annotations

from . import contacts, locations, misc, opportunities  # noqa: F401
