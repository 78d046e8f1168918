"""Damaged run-directory files: every command fails with a clear error, and destroys nothing.

Each file a command reads is truncated, filled with noise or removed in turn; each
command that reads it either copes (exit 0) or stops with exit 2 and one line naming the file.
No exception escapes as a traceback, and every file that was there is still there, unchanged
(the event log may only grow).
"""

import shutil

import numpy as np
import pytest

from nas.cli import main
from nas.config import SearchConfig
from nas.experiment import run_search

OPTIONS = {
    "space": "nb201",
    "channels": 4,
    "cells": 1,
    "warmup_steps": 3,
    "train_steps": 1,
    "budget": 4,
    "checkpoint_every": 2,
}
DAMAGES = ("truncate", "noise", "remove")  # emptying a file was tried too: as truncating
# Which commands read each file (`nas resume` rewrites results.json, so it is left out there).
READERS = {
    "config.json": ("resume", "export", "retrain", "report"),
    "results.json": ("export", "retrain", "report"),
    "events.jsonl": ("resume", "report"),
    "checkpoint": ("resume", "export"),
    "genotype.json": ("retrain",),
}
RETRAIN = ["--epochs", "1", "--channels", "4", "--cells", "1", "--no-progress"]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A finished search and an export of its best architecture."""
    run = tmp_path_factory.mktemp("fuzz") / "run"
    run_search(SearchConfig(**OPTIONS, out=str(run)), progress=False)
    assert main(["export", str(run), "--out", str(run / "export")]) == 0
    return run


def damage(path, how: str, rng) -> None:
    data = path.read_bytes()
    if how == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif how == "noise":
        path.write_bytes(rng.bytes(max(len(data), 16)))
    else:
        path.unlink()


def target(run, name: str):
    if name == "checkpoint":  # the newest checkpoint's metadata
        steps = [p for p in (run / "checkpoints").iterdir() if p.name.isdigit()]
        newest = max(steps, key=lambda p: int(p.name))
        return next(p for p in sorted(newest.rglob("*")) if p.is_file())
    if name == "genotype.json":
        return run / "export" / "rank1" / "genotype.json"
    return run / name


def command(name: str, run, file: str) -> list[str]:
    if name == "retrain":
        source = run / "export" / "rank1" if file == "genotype.json" else run
        return ["retrain", str(source), "--dataset", "digits", *RETRAIN]
    if name == "export":
        return ["export", str(run), "--out", str(run / "export2")]
    return [name, str(run), *(["--no-progress"] if name == "resume" else [])]


def snapshot(run) -> dict:
    return {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}


CASES = [(f, how, c) for f, readers in READERS.items() for how in DAMAGES for c in readers]


@pytest.mark.parametrize("file, how, cmd", CASES, ids=["-".join(c) for c in CASES])
def test_a_damaged_file_gives_a_clear_error_and_loses_nothing(
    pristine, tmp_path, capsys, file, how, cmd
):
    run = tmp_path / "run"
    shutil.copytree(pristine, run)
    path = target(run, file)
    damage(path, how, np.random.default_rng(len(str(path)) + DAMAGES.index(how)))
    before = snapshot(run)

    code = main(command(cmd, run, file))  # an exception here is the traceback a user must never see

    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        lines = [line for line in err.splitlines() if line.startswith(f"nas {cmd}: error:")]
        assert lines and "Traceback" not in err, err
        assert path.name in lines[0] or path.parent.name in lines[0], err  # names the file
    after = snapshot(run)
    for p, data in before.items():
        assert p in after, f"{p} was removed"
        if p.name == "events.jsonl":
            assert after[p].startswith(data), "the event log lost lines"
        else:
            assert after[p] == data or _written_by(cmd, p, run), f"{p} was changed"


def _written_by(cmd: str, path, run) -> bool:
    """Files a command writes as its output (not inputs it may not destroy)."""
    outputs = {"report": run / "report", "export": run / "export2", "retrain": run / "retrain"}
    if cmd == "resume":  # it writes the results again, and checkpoints
        return path.name in ("results.json", "best.json") or "checkpoints" in path.parts
    return cmd in outputs and outputs[cmd] in path.parents
