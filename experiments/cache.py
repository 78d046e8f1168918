"""Results kept in a JSON file between runs of an experiment, so a rerun (or a run that was
interrupted) redoes nothing already measured."""

from __future__ import annotations

import json
import os
from pathlib import Path


class ResultCache:
    """Named results under a header of the settings that produced them.

    Each `put` rewrites the file at once (through a temporary file, so a crash leaves the old
    one). A file written under another header is an error, not silently mixed in.

    Args:
      path: the JSON file; None keeps nothing on disk.
      header: the settings, as plain JSON data.
    """

    def __init__(self, path: str | os.PathLike | None, header: dict):
        self.path, self.header = (Path(path) if path else None), header
        self.results: dict = {}
        if self.path is not None and self.path.exists():
            saved = json.loads(self.path.read_text())
            if saved["header"] != json.loads(json.dumps(header)):
                raise ValueError(
                    f"{self.path} holds results for {saved['header']}, not {header}; "
                    "use another file, or delete it to measure again"
                )
            self.results = saved["results"]

    def __contains__(self, name: str) -> bool:
        return name in self.results

    def __getitem__(self, name: str):
        return self.results[name]

    def put(self, name: str, value) -> None:
        self.results[name] = value
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(json.dumps({"header": self.header, "results": self.results}))
        partial.replace(self.path)
