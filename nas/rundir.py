"""The run directory of a search: its config, an append-only event log, and its results.

Layout::

    RUN_DIR/config.json    the resolved options of the search
    RUN_DIR/events.jsonl   one JSON object a line, flushed as each event happens
    RUN_DIR/best.json      the top architectures so far, rewritten when one enters them
    RUN_DIR/results.json   the top architectures, written when the search ends
    RUN_DIR/checkpoints/   the search's checkpoints (`nas.checkpoint`)

A resumed search (``resume=True``) appends to the event log of the search it continues. A line
that a crash cut short, or any line that is not a JSON object, is kept but skipped with a
warning naming it (the evaluation it held, if any, runs again).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path


class RunDir:
    """Writes one search's files; refuses to mix two searches in one directory.

    Args:
      path: the directory (created if missing).
      config: the resolved options, written to config.json.
      overwrite: allow a directory that already holds a search's events.
      resume: continue the search the directory holds: keep its events and append to them.
    """

    def __init__(self, path, config: dict, *, overwrite: bool = False, resume: bool = False):
        self.path = Path(path)
        events = self.path / "events.jsonl"
        self.events: list[dict] = []  # a resumed search's earlier events
        elapsed = 0.0
        if resume:
            self.events = read_events(events)
            times = [e.get("time") for e in self.events]
            elapsed = max((t for t in times if isinstance(t, int | float)), default=0.0)
        elif events.exists() and events.stat().st_size and not overwrite:
            raise FileExistsError(
                f"{self.path} already holds a search ({events}); choose another --out, pass "
                f"--overwrite, or continue it with `nas resume {self.path}`"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        if not resume:  # a resumed search's config.json is its own already
            write_json(self.path / "config.json", config)
        self._events = open(events, "a" if resume else "w", encoding="utf-8")
        if resume and events.stat().st_size and not events.read_bytes().endswith(b"\n"):
            self._events.write("\n")  # end a line a crash cut short; it stays, skipped
        self._start = time.time() - elapsed

    def elapsed(self) -> float:
        """Seconds since the search started, the time of any earlier run of it included."""
        return time.time() - self._start

    def log(self, event: str, **fields) -> None:
        """Appends one event with its wall time since the search started, and flushes it."""
        line = {"event": event, "time": round(time.time() - self._start, 4), **fields}
        self._events.write(json.dumps(line) + "\n")
        self._events.flush()

    def write_results(self, results: dict) -> None:
        write_json(self.path / "results.json", results)

    def write_best(self, best: dict) -> None:
        """The best architectures so far, rewritten while the search runs."""
        write_json(self.path / "best.json", best)

    def close(self) -> None:
        self._events.close()


def read_events(path: Path) -> list[dict]:
    """The events of an event log, skipping (with a warning) lines that are not JSON objects:
    a last line without its newline (a write a crash cut short) or any malformed line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: not the run directory of a search")
    events = []
    lines = path.read_bytes().decode("utf-8", "replace").splitlines(keepends=True)
    for number, line in enumerate(lines, 1):
        try:
            event = json.loads(line) if line.endswith("\n") else None
        except json.JSONDecodeError:
            event = None
        if not isinstance(event, dict) or "event" not in event:
            warnings.warn(
                f"{path}, line {number}: not a complete event, skipped: {line[:80]!r}",
                stacklevel=2,
            )
            continue
        events.append(event)
    return events


def read_json(path, what: str = "") -> dict:
    """The JSON object in `path`.

    Args:
      what: what the file is, for the message when it is missing (e.g. "written when the
        search ends").

    Raises:
      FileNotFoundError, ValueError: naming the file and what is wrong with it.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist" + (f" ({what})" if what else "")) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object, not {type(data).__name__}")
    return data


def write_json(path: Path, data) -> None:
    """Writes JSON atomically: to a temporary file first, then renamed over the target."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
