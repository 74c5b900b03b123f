"""The canonical model of a dental practice (see ``tables`` for the naming rule and kinds)."""

from __future__ import annotations

from .schema import ARROW_TYPES, MONEY, arrow_schema, phi_columns, record_model
from .tables import TABLES, Column, Kind, PhiClass, Table, patient_scoped_tables, table

__all__ = [
    "ARROW_TYPES", "MONEY", "TABLES", "Column", "Kind", "PhiClass", "Table", "arrow_schema",
    "patient_scoped_tables", "phi_columns", "record_model", "table",
]
