"""``dos2hl provision``: the HighLevel schema a confirmed map needs, planned and created idempotently.

Per location, a Terraform-style plan lists custom objects, their field folders and fields (types,
pick-list options), associations (each custom object <-> Contact), contact and opportunity custom
fields, tags, and the steps a person must take by hand (pipelines and their stages, which the public
API cannot create; the HIPAA add-on and BAA). ``apply`` creates what is missing and plans again: a
second apply sends no create at all. The schema comes from the map and the export's reference tables
(``--source``, else the export the map records): never TEXT because a flag was missing. A field
dos2hl created itself (the provision ledger) with another type and no value is repaired (deleted,
created again); other conflicts (a field that exists with another data type, more than 10 custom
objects) stop the run before the first write.

    >>> desired = desired_schema(mapping, source="export/")          # doctest: +SKIP
    >>> plan = plan_location(client, desired, location="L001")        # doctest: +SKIP
    >>> print(plan.render()); apply_plan(client, plan)                # doctest: +SKIP
"""

from __future__ import annotations

from .apply import apply_plan, export_for, needs_export, provision
from .ledger import ProvisionLedger
from .plan import (
    MAX_CUSTOM_OBJECTS,
    Change,
    DesiredSchema,
    FieldSpec,
    ObjectDef,
    Plan,
    ProvisionError,
    desired_schema,
    field_problems,
    plan_location,
)

__all__ = ["Change", "DesiredSchema", "FieldSpec", "MAX_CUSTOM_OBJECTS", "ObjectDef", "Plan",
           "ProvisionError", "ProvisionLedger", "apply_plan", "desired_schema", "export_for",
           "field_problems",
           "needs_export", "plan_location", "provision"]
