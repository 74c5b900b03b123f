"""Endpoint handlers, one module per API family; importing this package registers them all."""

from __future__ import annotations

from . import associations, calendars, contacts, fields_v2, locations, misc, objects, opportunities  # noqa: F401
