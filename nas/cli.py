"""The `nas` command: `nas search` runs a search, `nas resume` continues one that stopped,
`nas spaces` lists the built-in spaces."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

from nas.config import SearchConfig, field_types, load_config_file


def main(argv=None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, KeyError, FileNotFoundError, FileExistsError) as error:
        print(f"nas {args.command}: error: {error}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nas", description="Neural architecture search on JAX, Flax and Optax."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    search = commands.add_parser(
        "search",
        help="run an architecture search",
        description="Run an architecture search and write its run directory.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    search.add_argument("--config", help="TOML file of options (the command line wins)")
    search.add_argument(
        "--overwrite", action="store_true", help="reuse an --out directory holding a search"
    )
    search.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_options(search)
    search.set_defaults(run=_search)

    resume = commands.add_parser(
        "resume",
        help="continue a search that stopped, from its run directory",
        description=(
            "Continue the search in RUN_DIR from its last checkpoint; evaluations logged after "
            "it are not run or logged again. Options given must equal the run's own."
        ),
    )
    resume.add_argument("run_dir", metavar="RUN_DIR", help="the run directory of the search")
    resume.add_argument("--config", help="TOML file of options, checked against the run's")
    resume.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_options(resume)
    resume.set_defaults(run=_resume)

    spaces = commands.add_parser(
        "spaces", help="list the built-in search spaces", description="List built-in spaces."
    )
    spaces.set_defaults(run=_spaces)
    return parser


def _add_options(parser: argparse.ArgumentParser) -> None:
    """One flag per `SearchConfig` option."""
    types = field_types()
    for f in dataclasses.fields(SearchConfig):
        flag = "--" + f.name.replace("_", "-")
        help = f"{f.metadata['help']} (default: {f.default})".replace("%", "%%")
        if types[f.name] is bool:
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help
            )
            continue
        parser.add_argument(
            flag, type=types[f.name], default=None, choices=f.metadata["choices"], help=help
        )


def _options(args) -> dict:
    """The options given: from --config, then the command line's flags over them."""
    options = load_config_file(args.config) if args.config else {}
    for name in field_types():
        if getattr(args, name, None) is not None:
            options[name] = getattr(args, name)
    return options


def _resolve(args) -> SearchConfig:
    return SearchConfig(**_options(args))


def _search(args) -> int:
    from nas.experiment import run_search

    config = _resolve(args)
    records, best = run_search(config, overwrite=args.overwrite, progress=not args.no_progress)
    _print_top(records, best, config.out)
    return 0


def _resume(args) -> int:
    from nas.experiment import resume_search

    records, best = resume_search(args.run_dir, _options(args), progress=not args.no_progress)
    _print_top(records, best, args.run_dir)
    return 0


def _print_top(records, best, out) -> None:
    print(f"\nTop {len(best)} of {len(records)} architectures ({out}/results.json):")
    for rank, (record, text) in enumerate(best, 1):
        score = "failed" if math.isnan(record.score) else f"{record.score:.4f}"
        print(f"{rank:>3}. {score}  {text}")


def _spaces(args) -> int:
    from search_spaces import SPACES

    for name, factory in SPACES.items():
        space = factory()
        cells = ", ".join(
            f"{t}: {c.n_inputs} in + {c.n_nodes} nodes, {len(c.ops)} ops"
            for t, c in space.cells.items()
        )
        print(f"{name:<8} {space.size:>32,} architectures  ({cells})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
