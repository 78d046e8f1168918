"""The report's Markdown summary: options, counts, timing, top architectures, retraining."""

from __future__ import annotations

import collections
import dataclasses
import math

from nas.config import SearchConfig
from nas.report.curves import retrain_runs
from nas.report.phases import phases
from nas.report.run import Run
from nas.search import Record

# The figures the summary links, by file name, with their captions.
FIGURES = {
    "progress.png": "Best score so far",
    "phases.png": "Scores per phase of the strategy",
    "cells.png": "Cells of the best architecture",
    "learning_curves.png": "Learning curves of the retraining",
}


def summary(run: Run, figures: list[str]) -> str:
    """The summary of `run` as Markdown, linking those of `figures` (files next to it)."""
    o = run.options
    lines = [
        f"# Search report: `{run.path}`",
        "",
        f"Space `{o['space']}`, strategy `{o['strategy']}`, dataset `{o['dataset']}`, "
        f"evaluator `{o['evaluator']}`, seed {o['seed']}.",
        "",
    ]
    if not run.finished:
        lines += [
            f"**Not finished** (no results.json): {len(run.records)} of {o['budget']} "
            "evaluations logged so far; the top architectures are ranked from the event log.",
            "",
        ]
    lines += _options(run)
    lines += _counts(run) + _figure("progress.png", figures)
    lines += _phases(run) + _figure("phases.png", figures)
    lines += _top(run) + _figure("cells.png", figures)
    if run.space_error:
        lines += [f"The cells are not drawn: the space did not load ({run.space_error}).", ""]
    if run.retrain is not None:
        lines += ["## Retraining", ""] + _retrain(run.retrain)
        lines += _figure("learning_curves.png", figures)
    return "\n".join(lines)


def _figure(name: str, figures: list[str]) -> list[str]:
    return [f"![{FIGURES[name]}]({name})", ""] if name in figures else []


def _options(run: Run) -> list[str]:
    defaults = {f.name: f.default for f in dataclasses.fields(SearchConfig)}
    differ = [
        (name, value, defaults.get(name, "-"))
        for name, value in run.config.items()
        if name != "out" and (name not in defaults or value != defaults[name])
    ]
    lines = ["## Options", ""]
    if not differ:
        return lines + ["Every option at its default (`nas search --help`).", ""]
    lines += ["| option | value | default |", "|---|---|---|"]
    lines += [f"| {name} | `{value}` | `{default}` |" for name, value, default in differ]
    return lines + ["", "Every other option at its default (`nas search --help`).", ""]


def _counts(run: Run) -> list[str]:
    records = run.records
    scores = [r.score for r in records if not math.isnan(r.score)]
    searching = run.times[-1] - run.warmup_seconds
    rate = f"{60 * len(records) / searching:.1f}" if searching > 0 else "-"
    rows = {
        "evaluations": len(records),
        "distinct architectures": len({r.key for r in records}),
        "cached (repeats, not trained again)": sum(r.cached for r in records),
        "failed": len(records) - len(scores),
        "budget": run.options["budget"],
        "best validation score": f"{max(scores):.4f}" if scores else "none (all failed)",
        "wall time": _duration(run.wall_seconds)
        + (f" (warm-up {_duration(run.warmup_seconds)})" if run.warmup_seconds else ""),
        "evaluations per minute (after the warm-up)": rate,
    }
    lines = ["## Evaluations", "", "| | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in rows.items()]
    errors = collections.Counter(
        (r.error or "repeat of a failed architecture (cached)").splitlines()[0][:120]
        for r in records
        if math.isnan(r.score)
    )
    if errors:
        lines += ["", "Failures:", ""]
        lines += [f"- {n} x `{error}`" for error, n in errors.most_common(5)]
        if len(errors) > 5:
            lines.append(f"- and {len(errors) - 5} other errors")
    return lines + [""]


def _phases(run: Run) -> list[str]:
    split = phases(run.options, max(r.index for r in run.records) + 1)
    lines = [
        "## Phases",
        "",
        "| phase | evaluations | scored | median | best |",
        "|---|---|---|---|---|",
    ]
    for phase in split:
        scores = [r.score for r in run.records if phase.start <= r.index < phase.stop]
        valid = sorted(s for s in scores if not math.isnan(s))
        median = f"{valid[len(valid) // 2]:.4f}" if valid else "-"
        best = f"{valid[-1]:.4f}" if valid else "-"
        lines.append(
            f"| {phase.name} | {phase.start}-{phase.stop - 1} | {len(valid)} of {len(scores)} "
            f"| {median} | {best} |"
        )
    return lines + [""]


def _top(run: Run) -> list[str]:
    source = "results.json" if run.finished else "the event log"
    lines = [
        "## Top architectures",
        "",
        f"From {source}; the index is the evaluation's place in the search.",
        "",
        "| rank | score | index | architecture |",
        "|---|---|---|---|",
    ]
    for rank, record in enumerate(run.top, 1):
        score = "failed" if math.isnan(record.score) else f"{record.score:.4f}"
        lines.append(f"| {rank} | {score} | {record.index} | {_describe(run, record)} |")
    return lines + [""]


def _describe(run: Run, record: Record) -> str:
    text = run.space.describe(record.arch) if run.space else str(list(record.arch))
    return "`" + text.replace("|", "\\|") + "`"


def _retrain(metrics: dict) -> list[str]:
    lines = []
    overall = dict(_scalars(metrics.get("test", {})))
    if overall:
        lines += ["Test metrics: " + ", ".join(f"{k} {v:.4f}" for k, v in overall.items()), ""]
    runs = retrain_runs(metrics)
    if not runs:
        return lines
    tests = [dict(_scalars(run.get("test", {}))) for run in runs]
    names = list(dict.fromkeys(name for test in tests for name in test))
    lines += [
        "| run | epochs | best epoch | " + " | ".join(f"test {n}" for n in names) + " |",
        "|---" * (3 + len(names)) + "|",
    ]
    for i, (run, test) in enumerate(zip(runs, tests)):
        name = f"seed {run['seed']}" if "seed" in run else str(i + 1)
        values = [f"{test[n]:.4f}" if n in test else "-" for n in names]
        best = run.get("best_epoch", "-")
        lines.append(f"| {name} | {len(run['history'])} | {best} | " + " | ".join(values) + " |")
    return lines + [""]


def _scalars(data: dict, prefix: str = ""):
    """The numbers of `data` and of the dicts in it, by dotted name."""
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _scalars(value, f"{prefix}{key}.")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            yield prefix + key, float(value)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 120:
        return f"{minutes} min {secs:02d} s"
    return f"{minutes // 60} h {minutes % 60:02d} min"
