"""The entry point every experiment shares: a full run, or ``--quick`` for a smoke run.

``--set field=value`` overrides one field of the experiment's config (repeatable); a tuple
field takes comma-separated values, e.g. ``--set datasets=pubmed,cs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Callable


def main(description: str, run: Callable, full, quick, argv=None) -> dict:
    """Parses the options, runs `run` with the chosen config, prints the JSON figures.

    The JSON object is the last line printed, so scripts and CI can read it with ``tail -1``.
    """
    names = ", ".join(f.name for f in dataclasses.fields(full))
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="a tiny smoke run")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help=f"override a config field; fields: {names}",
    )
    args = parser.parse_args(argv)
    config = quick if args.quick else full
    try:
        config = dataclasses.replace(config, **dict(_override(config, s) for s in args.set))
    except ValueError as error:
        parser.error(str(error))
    figures = run(config)
    print(json.dumps(figures))
    return figures


def _override(config, setting: str) -> tuple[str, object]:
    """Parses ``field=value`` against the type of the field's current value."""
    name, sep, text = setting.partition("=")
    fields = {f.name for f in dataclasses.fields(config)}
    if not sep or name not in fields:
        raise ValueError(
            f"--set {setting!r}: expected FIELD=VALUE with FIELD one of {sorted(fields)}"
        )
    current = getattr(config, name)
    if isinstance(current, tuple):
        kind = type(current[0]) if current else str
        return name, tuple(_parse(kind, part, name) for part in text.split(",") if part)
    return name, _parse(type(current), text, name)


def _parse(kind: type, text: str, name: str):
    if kind is bool:
        if text.lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"--set {name}={text}: expected true or false")
        return text.lower() in ("true", "1")
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"--set {name}={text}: expected a value of type {kind.__name__}") from None
