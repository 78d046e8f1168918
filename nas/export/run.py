"""Exporting the top architectures of a finished search from its run directory.

Reads ``RUN_DIR/config.json`` (the space, its size, the dataset) and ``RUN_DIR/results.json``
(the top architectures, best first), and writes ``OUT/rank1``, ``OUT/rank2``, ... (see
`nas.export.write`). The weights come from the run's latest checkpoint of the supernet.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from nas.checkpoint import restore_evaluator
from nas.experiment import read_config
from nas.export.write import export_architecture
from nas.space import InvalidArchitecture, load_space


def export_run(run_dir, out, *, top: int = 1, weights: bool = True, overwrite: bool = False):
    """Exports the `top` best architectures of the search in `run_dir` into `out`.

    Args:
      run_dir: the run directory of a finished search.
      out: the export directory; ``out/rankN`` holds the N-th best architecture.
      top: how many architectures to export.
      weights: write the weights each inherits from the run's supernet (when it has one).
      overwrite: replace an earlier export in `out`.

    Returns:
      ``(directory, score, with_weights)`` per exported architecture, best first.

    Raises:
      FileNotFoundError, ValueError: a run directory that lacks a file or holds a malformed
        one (the message names the file and what is wrong); `out` holds an export already
        (FileExistsError, unless `overwrite`).
    """
    run_dir, out = Path(run_dir), Path(out)
    if top < 1:
        raise ValueError(f"--top must be at least 1, got {top}")
    config = read_config(run_dir)
    path = run_dir / "results.json"
    results = _read(path)
    entries = results.get("top")
    if not isinstance(entries, list):
        raise ValueError(f"{path}: no list of top architectures ('top')")
    if top > len(entries):
        raise ValueError(
            f"{path} holds {len(entries)} architectures; cannot export the top {top} "
            f"(the search kept its top {len(entries)}: its --top option)"
        )
    if (out / "rank1").exists() and not overwrite:
        raise FileExistsError(
            f"{out} holds an export already; choose another --out or pass --overwrite"
        )
    size = {"channels": config.channels, "cells_per_stage": config.cells}
    space = load_space(config.space, **size)
    if results.get("space") != space.name:
        raise ValueError(
            f"{path}: its space is {results.get('space')!r}, the config's {space.name!r}"
        )
    archs = []
    for rank, entry in enumerate(entries[:top], 1):
        try:
            archs.append(space.validate(entry["arch"]))
        except (KeyError, TypeError, InvalidArchitecture) as error:
            raise ValueError(f"{path}: architecture {rank} is malformed: {error!r}") from None
    evaluator = restore_evaluator(run_dir) if weights else None
    if evaluator is None:
        shape = _data_shape(config.dataset)
    else:
        shape = evaluator.data.input_shape, evaluator.data.num_classes
    exported = []
    for rank, (entry, arch) in enumerate(zip(entries, archs), 1):
        score = entry.get("score")
        supernet = None if evaluator is None else evaluator.network(arch)
        directory = export_architecture(
            out / f"rank{rank}",
            space,
            arch,
            supernet=supernet,
            input_shape=shape[0],
            num_classes=shape[1],
            score=score,
            spec=_portable(config.space),
            space_args={k: v for k, v in size.items() if v is not None},
        )
        exported.append((directory, math.nan if score is None else score, supernet is not None))
    return exported


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{path} does not exist: the search has not finished (`nas resume` finishes it)"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} should hold a JSON object, not {type(data).__name__}")
    return data


def _data_shape(dataset: str) -> tuple[tuple[int, ...], int]:
    from nas.data import load_dataset

    data = load_dataset(dataset)
    return data.input_shape, data.num_classes


def _portable(spec: str) -> str:
    """The space spec with a user's space file as an absolute path, valid from anywhere."""
    path, sep, name = spec.rpartition(":")
    return f"{Path(path).resolve()}:{name}" if sep and path.endswith(".py") else spec
