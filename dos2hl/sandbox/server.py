"""Running the sandbox under uvicorn (``dos2hl sandbox serve``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from .seed import init_locations, write_tokens_file

__all__ = ["serve", "prepare_state"]

log = logging.getLogger("dos2hl.sandbox")


def prepare_state(state_dir: Path, locations: int, tokens_out: Path | None, *,
                  allow_duplicates: bool | None = None) -> dict[str, str]:
    """Ensure ``locations`` sub-accounts exist, apply the duplicate setting, write the tokens file."""
    tokens = init_locations(state_dir, locations, allow_duplicates=bool(allow_duplicates))
    if allow_duplicates is not None:
        from .store import Store

        store = Store(state_dir)
        try:
            for loc in store.locations():
                loc.setdefault("settings", {})["allowDuplicateContact"] = allow_duplicates
                store.put_location(loc)
        finally:
            store.close()
    if tokens_out is not None:
        write_tokens_file(tokens_out, tokens)
    return tokens


def serve(state_dir: Path, *, host: str = "127.0.0.1", port: int = 8765, locations: int = 1,
          tokens_out: Path | None = None, burst: tuple[int, float] = (100, 10.0), daily: int = 200_000,
          faults: str | None = None, allow_duplicates: bool | None = None, index_lag_s: float = 0.0,
          clock: Callable[[], float] = time.time) -> None:
    """Prepare the state and serve until interrupted (blocking)."""
    import uvicorn

    from .app import create_app

    prepare_state(state_dir, locations, tokens_out, allow_duplicates=allow_duplicates)
    app = create_app(state_dir, burst=burst, daily=daily, faults=faults, index_lag_s=index_lag_s, clock=clock)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
