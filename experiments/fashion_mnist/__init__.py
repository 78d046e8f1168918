"""Fashion-MNIST end to end: search, retrain the picks from scratch, compare them with a
hand-designed network and random search's pick at the same parameter budget and recipe.

Run from the repository root: ``python -m experiments.fashion_mnist`` (``--quick`` for a smoke
run on digits; ``--set field=value`` to change a default of `config.Config`). Every search and
every retraining seed is kept in ``OUT/results.json`` as it finishes, so an interrupted run
goes on where it stopped. Writes ``OUT/table.md``, ``OUT/progress.png``, the searches' run
directories under ``OUT/runs/`` and each contender's export (genotype, standalone model module,
retrained weights of every seed) under ``OUT/export/``; the last line printed is a JSON object
of the figures.
"""
