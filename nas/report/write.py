"""`write_report`: every figure of a run directory and the summary that links them."""

from __future__ import annotations

import math
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nas.report.cells import cells_figure
from nas.report.curves import curves_figure, retrain_runs
from nas.report.phases import phases_figure
from nas.report.progress import progress_figure
from nas.report.run import load_run
from nas.report.summary import summary


def write_report(run_dir, out=None) -> list[Path]:
    """Writes the report of the search in `run_dir` into `out` (default: RUN_DIR/report).

    Returns:
      The files written, the summary (summary.md) last.
    """
    run = load_run(run_dir)
    out = Path(out) if out is not None else run.path / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures = {
        "progress.png": progress_figure(run.records, run.times),
        "phases.png": phases_figure(run.records, run.options),
    }
    if run.space is not None:
        best = run.top[0]
        score = "failed" if math.isnan(best.score) else f"validation score {best.score:.4f}"
        title = f"Best architecture of {run.space.name} (evaluation {best.index}, {score})"
        figures["cells.png"] = cells_figure(run.space, best.arch, title)
    if run.retrain is not None and retrain_runs(run.retrain):
        figures["learning_curves.png"] = curves_figure(run.retrain)
    written = [_save(figure, out / name) for name, figure in figures.items()]
    text = summary(run, list(figures))
    (out / "summary.md").write_text(text + "\n", encoding="utf-8")
    return [*written, out / "summary.md"]


def _save(figure: Figure, path: Path) -> Path:
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=120)
    return path
