"""Writing: payloads -> HighLevel, every operation in the ledger. The shard writers (parents before
children), what a sub-account already holds under our keys (adopted, never re-created), updates in
place with sealed before-images, the read-back diff, and the two ways out that share one delete/tag
module: a delta's rows deleted in the source and a rollback."""

from __future__ import annotations

from .existing import Inventory, load_inventory, save_inventory, take_inventory
from .households import read_households
from .ledger import IdMap, LedgerWriter, Op, read_ledger
from .removal import DELETED_TAG, delete_object
from .rollback import rollback
from .updates import opportunity_text, update_in_place
from .writer import SHARED_FIELDS, LocationSchema, ShardWriter

__all__ = ["DELETED_TAG", "SHARED_FIELDS", "IdMap", "Inventory", "LedgerWriter", "LocationSchema", "Op",
           "ShardWriter", "delete_object", "load_inventory", "opportunity_text", "read_households",
           "read_ledger", "rollback", "save_inventory", "take_inventory", "update_in_place"]
