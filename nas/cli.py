"""The `nas` command: `nas search` runs a search, `nas resume` continues one that stopped,
`nas export` writes its top architectures as standalone modules, `nas retrain` trains one from
scratch, `nas report` plots a search, `nas spaces` lists the built-in spaces."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys

from nas.allocator import restart_with_preloaded_allocator
from nas.config import SearchConfig, field_types, load_config_file
from nas.data import AUGMENTATIONS
from nas.retrain import RetrainConfig
from nas.train import TrainConfig


def command() -> int:
    """The `nas` program: `main` on the command line, restarted first with tcmalloc preloaded
    where the system has it (`nas.allocator`)."""
    restart_with_preloaded_allocator()
    return main()


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

    export = commands.add_parser(
        "export",
        help="write the top architectures of a search as standalone Flax modules",
        description=(
            "Write DIR/rankN/ for each of the top K architectures of the search in RUN_DIR: "
            "genotype.json (the architecture, its space and score), model.py (a module that "
            "builds the network with jax and flax alone) and weights.msgpack (the weights it "
            "inherits from the run's supernet)."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    export.add_argument("run_dir", metavar="RUN_DIR", help="the run directory of a search")
    export.add_argument("--top", type=int, default=1, metavar="K", help="architectures to export")
    export.add_argument("--out", metavar="DIR", help="export directory (default: RUN_DIR/export)")
    export.add_argument("--no-weights", action="store_true", help="write no weights")
    export.add_argument("--overwrite", action="store_true", help="replace an export in DIR")
    export.set_defaults(run=_export)

    report = commands.add_parser(
        "report",
        help="write plots and a Markdown summary of a search",
        description=(
            "Write DIR/progress.png, phases.png, cells.png, learning_curves.png (when "
            "RUN_DIR/retrain/metrics.json exists) and summary.md, which links them; works on a "
            "search that is still running or stopped."
        ),
    )
    report.add_argument("run_dir", metavar="RUN_DIR", help="the run directory of a search")
    report.add_argument("--out", metavar="DIR", help="report directory (default: RUN_DIR/report)")
    report.set_defaults(run=_report)

    retrain = commands.add_parser(
        "retrain",
        help="train a searched architecture from scratch and test it",
        description=(
            "Train an architecture from scratch at full size (the space's default size unless "
            "--channels/--cells), with early stopping on the validation split, and report "
            "accuracy, per-class precision, recall and F1 and the confusion matrix on the test "
            "split. SOURCE is a run directory (its --rank-th best architecture) or an export."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    retrain.add_argument("source", metavar="SOURCE", help="a run directory or an export")
    retrain.add_argument("--rank", type=int, default=1, help="which of a run's architectures")
    retrain.add_argument("--out", help="output directory (default: SOURCE/retrain)")
    retrain.add_argument("--dataset", help="the data (default: the run's; needed for an export)")
    retrain.add_argument("--channels", type=int, help="channels of the first stage")
    retrain.add_argument("--cells", type=int, help="cells per stage")
    defaults, train = RetrainConfig(), TrainConfig()
    for name in ("epochs", "patience", "folds", "seeds", "seed"):
        retrain.add_argument("--" + name, type=int, default=getattr(defaults, name))
    for name in ("optimizer", "schedule"):
        retrain.add_argument("--" + name, default=getattr(train, name))
    for name in ("learning_rate", "weight_decay"):
        retrain.add_argument(
            "--" + name.replace("_", "-"), type=float, default=getattr(train, name)
        )
    retrain.add_argument("--batch-size", type=int, default=train.batch_size)
    retrain.add_argument(
        "--devices",
        type=int,
        default=train.devices,
        help="local devices each batch is split across (on a CPU, that many CPU devices)",
    )
    retrain.add_argument(
        "--augment",
        choices=AUGMENTATIONS,
        default=defaults.augment,
        help="training batches: random shifts of up to 2 pixels, and horizontal flips",
    )
    retrain.add_argument("--no-progress", action="store_true", help="no progress bar")
    retrain.set_defaults(run=_retrain)

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


def _export(args) -> int:
    from nas.export import export_run

    out = args.out or f"{args.run_dir}/export"
    exported = export_run(
        args.run_dir, out, top=args.top, weights=not args.no_weights, overwrite=args.overwrite
    )
    for directory, score, with_weights in exported:
        files = "genotype.json, model.py" + (", weights.msgpack" if with_weights else "")
        print(f"{directory}: score {score:.4f} ({files})")
    if not args.no_weights and not exported[0][2]:
        print("no weights: the run has no shared weights to inherit")
    return 0


def _report(args) -> int:
    from nas.report import write_report

    files = write_report(args.run_dir, args.out)
    print(f"{files[-1]} ({', '.join(f.name for f in files[:-1])})")
    return 0


def _retrain(args) -> int:
    from nas.data import load_dataset
    from nas.parallel import use_cpu_devices
    from nas.retrain import retrain, retrain_source

    use_cpu_devices(args.devices)  # before JAX starts its backend

    space, arch, dataset = retrain_source(
        args.source, rank=args.rank, channels=args.channels, cells=args.cells
    )
    dataset = args.dataset or dataset
    if dataset is None:
        raise ValueError(f"{args.source} is an export: give the data to train on with --dataset")
    train = TrainConfig(
        optimizer=args.optimizer,
        learning_rate=args.learning_rate,
        weight_decay=args.weight_decay,
        schedule=args.schedule,
        batch_size=args.batch_size,
        devices=args.devices,
    )
    config = RetrainConfig(
        epochs=args.epochs,
        patience=args.patience,
        folds=args.folds,
        seeds=args.seeds,
        seed=args.seed,
        augment=args.augment,
        train=train,
    )
    out = args.out or f"{args.source}/retrain"
    metrics = retrain(
        space, arch, load_dataset(dataset), config, out=out, progress=not args.no_progress
    )
    print(f"{space.describe(arch)}\non {dataset}, {config.seeds} seed(s):")
    for run in metrics["runs"]:
        test = run["test"]
        print(
            f"  seed {run['seed']}: test accuracy {test['accuracy']:.4f}, macro F1 "
            f"{test['macro']['f1']:.4f} (best epoch {run['best_epoch']} of {len(run['history'])})"
        )
    for fold in metrics["folds"]:
        print(f"  fold {fold['fold']}: validation accuracy {fold['val_accuracy']:.4f}")
    print(f"{out}/metrics.json: per-class precision, recall, F1, the confusion matrix")
    return 0


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
