"""The report of a search: figures and a Markdown summary from its run directory.

`write_report(RUN_DIR)` (the command ``nas report RUN_DIR``) writes into RUN_DIR/report:

    progress.png          the best validation score so far, by evaluations and by wall time
    phases.png            the scores in each phase of the strategy (`nas.report.phases`)
    cells.png             the cells of the best architecture
    learning_curves.png   loss and accuracy per epoch of RUN_DIR/retrain/metrics.json, if any
    summary.md            options, counts, timing, the top architectures; links the figures

It reads a search that is still running or was killed as well as a finished one.
"""

from nas.report.write import write_report

__all__ = ["write_report"]
