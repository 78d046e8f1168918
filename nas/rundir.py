"""The run directory of a search: its config, an append-only event log, and its results.

Layout::

    RUN_DIR/config.json    the resolved options of the search
    RUN_DIR/events.jsonl   one JSON object a line, flushed as each event happens
    RUN_DIR/results.json   the top architectures, written when the search ends
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path


class RunDir:
    """Writes one search's files; refuses to mix two searches in one directory.

    Args:
      path: the directory (created if missing).
      config: the resolved options, written to config.json.
      overwrite: allow a directory that already holds a search's events.
    """

    def __init__(self, path, config: dict, *, overwrite: bool = False):
        self.path = Path(path)
        events = self.path / "events.jsonl"
        if events.exists() and events.stat().st_size and not overwrite:
            raise FileExistsError(
                f"{self.path} already holds a search ({events}); choose another --out "
                "or pass --overwrite"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / "config.json", config)
        self._events = open(events, "w", encoding="utf-8")
        self._start = time.time()

    def log(self, event: str, **fields) -> None:
        """Appends one event with its wall time since the search started, and flushes it."""
        line = {"event": event, "time": round(time.time() - self._start, 4), **fields}
        self._events.write(json.dumps(line) + "\n")
        self._events.flush()

    def write_results(self, results: dict) -> None:
        write_json(self.path / "results.json", results)

    def close(self) -> None:
        self._events.close()


def write_json(path: Path, data) -> None:
    """Writes JSON atomically: to a temporary file first, then renamed over the target."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
