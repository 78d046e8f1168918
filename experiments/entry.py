"""The entry point every experiment shares: a full run, or ``--quick`` for a smoke run."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable


def main(description: str, run: Callable, full, quick, argv=None) -> dict:
    """Parses ``--quick``, runs `run` with the full or quick config, prints the JSON figures.

    The JSON object is the last line printed, so scripts and CI can read it with ``tail -1``.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    args = parser.parse_args(argv)
    figures = run(quick if args.quick else full)
    print(json.dumps(figures))
    return figures
