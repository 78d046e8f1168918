"""Export: architectures as standalone Flax modules, their genotypes and inherited weights.

``nas export RUN_DIR --top K --out DIR`` writes ``DIR/rankN/`` for the N-th best architecture
of a search: ``genotype.json``, ``model.py`` (a module needing only jax and flax) and
``weights.msgpack``. `load_architecture` reads a genotype back and builds its network.
"""

from nas.export.genotype import Architecture, genotype, load_architecture
from nas.export.module import model_source
from nas.export.run import export_run
from nas.export.weights import load_weights, save_weights
from nas.export.write import export_architecture

__all__ = [
    "Architecture",
    "export_architecture",
    "export_run",
    "genotype",
    "load_architecture",
    "load_weights",
    "model_source",
    "save_weights",
]
