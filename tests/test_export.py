"""Export: standalone modules that reproduce the supernet, genotypes, and `nas export`."""

import ast
import json
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest
from flax import nnx

from nas.checkpoint import load_supernet
from nas.cli import main
from nas.export import export_architecture, load_architecture, load_weights
from nas.export import run as export_run
from nas.export.bundle import standalone
from nas.ops import OPS, ReLUConvBN
from nas.space import Cell, Node, SearchSpace, Skeleton
from nas.supernet import child_net, supernet
from search_spaces import SPACES

TINY = {"channels": 4, "cells_per_stage": 1}
SHAPE, CLASSES = (8, 8, 1), 10
ALLOWED = {"jax", "flax", "optax"}

# Loads each exported module where `nas` and `search_spaces` cannot be imported, and prints
# its logits for the images both processes draw from the same key.
STANDALONE = """
import importlib.util, json, sys

class Blocker:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("nas", "search_spaces"):
            raise ImportError(f"{name} is blocked")

sys.meta_path.insert(0, Blocker())
try:
    import nas
    raise SystemExit("nas is importable")
except ImportError:
    pass
import jax
from flax import nnx

out = {}
for name, folder in json.loads(sys.argv[1]).items():
    spec = importlib.util.spec_from_file_location(f"model_{name}", f"{folder}/model.py")
    model = sys.modules[spec.name] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model)
    x = jax.random.normal(jax.random.key(7), (16, *model.INPUT_SHAPE))
    net = model.load_weights(model.build(), f"{folder}/weights.msgpack")
    forward = nnx.jit(lambda net, x: net(x))
    out[name] = {
        "logits": forward(net, x).tolist(),
        "first4": forward(net, x[:4]).tolist(),
        "fresh": forward(model.build(), x).tolist(),
        "other_state": len(jax.tree.leaves(nnx.state(net, nnx.Not(nnx.Param)))),
    }
print(json.dumps(out))
"""


def images(n=16):
    return jax.random.normal(jax.random.key(7), (n, *SHAPE))


def trained_like(space, **options):
    """A supernet whose weights, biases included, all differ from a fresh network's."""
    net = supernet(space, SHAPE, CLASSES, seed=1, **options)
    nnx.update(net, _moved(nnx.state(net, nnx.Param)))
    return net


@jax.jit
def _moved(params):
    return jax.tree.map(lambda p: 1.5 * p + 0.01, params)


@pytest.fixture(scope="module")
def standalone_runs(tmp_path_factory):
    """Each built-in space's export and supernet logits, and the logits of its exported module
    run in a separate Python without `nas`."""
    root = tmp_path_factory.mktemp("exports")
    expected, folders = {}, {}
    for i, name in enumerate(sorted(SPACES)):
        space = SPACES[name](**TINY)
        # Scanned edges compile DARTS and ENAS supernets several times faster.
        net = trained_like(space, scan_edges=name != "nb201")
        assert not jax.tree.leaves(nnx.state(net, nnx.Not(nnx.Param)))  # no running statistics
        arch = space.sample(jax.random.key(i))
        folders[name] = str(export_architecture(root / name, space, arch, supernet=net))
        forward = nnx.jit(lambda net, x, arch: net(x, arch))
        expected[name] = (forward(net, images(), arch), forward(net, images()[:4], arch))
    result = subprocess.run(
        [sys.executable, "-I", "-c", STANDALONE, json.dumps(folders)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.splitlines()[-1])
    return folders, expected, got


def test_exported_module_imports_only_jax_flax_and_the_standard_library(standalone_runs):
    folders, _, _ = standalone_runs
    for folder in folders.values():
        tree = ast.parse(open(f"{folder}/model.py").read())
        imported = {
            (alias.name if isinstance(node, ast.Import) else node.module).split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in node.names
        }
        assert imported - {"__future__"} <= ALLOWED | sys.stdlib_module_names, imported
        assert {"jax", "flax"} <= imported and not imported & {"nas", "search_spaces", "numpy"}
        text = open(f"{folder}/model.py").read()
        for unneeded in ("class SearchSpace", "def supernet", "def child_from_supernet"):
            assert unneeded not in text


def test_bundling_refuses_other_packages():
    with pytest.raises(ValueError, match="imports numpy; a standalone module may import only"):
        standalone('"""A module."""\n\nimport numpy\n\nPI = numpy.pi\n', ())


@pytest.mark.parametrize("name", sorted(SPACES))
def test_exported_module_and_weights_reproduce_the_supernet(standalone_runs, name):
    _, expected, got = standalone_runs
    logits, first4 = expected[name]
    np.testing.assert_allclose(got[name]["logits"], logits, atol=1e-5)
    # BatchNorm uses the batch's statistics in both, in every mode: a smaller batch changes
    # the logits, identically in both; and no running statistics exist to restore.
    np.testing.assert_allclose(got[name]["first4"], first4, atol=1e-5)
    assert not np.allclose(first4, logits[:4], atol=1e-3)
    assert got[name]["other_state"] == 0
    # The weights come from the supernet, not from the module's own initialisation.
    assert not np.allclose(got[name]["fresh"], logits, atol=1e-3)


def test_load_architecture_builds_the_network_with_its_weights(tmp_path):
    space = SPACES["nb201"](**TINY)
    net = trained_like(space)
    arch = space.sample(jax.random.key(3))
    export_architecture(tmp_path, space, arch, supernet=net, score=0.75)
    loaded = load_architecture(tmp_path)
    assert loaded.space.name == "nb201" and loaded.score == 0.75
    assert loaded.input_shape == SHAPE and loaded.num_classes == CLASSES
    np.testing.assert_array_equal(loaded.arch, arch)
    model = loaded.build_model(weights=tmp_path / "weights.msgpack")
    np.testing.assert_allclose(model(images()), net(images(), arch), atol=1e-5)
    data = json.loads((tmp_path / "genotype.json").read_text())
    assert data["readable"] == space.describe(arch) and data["key"] == space.key(arch)
    assert data["network"] == {
        "channels": 4,
        "cells_per_stage": 1,
        "input_shape": list(SHAPE),
        "num_classes": CLASSES,
    }


def test_load_architecture_names_the_field_that_does_not_fit(tmp_path):
    space = SPACES["nb201"](**TINY)
    arch = space.sample(jax.random.key(0))
    export_architecture(tmp_path, space, arch, input_shape=SHAPE, num_classes=CLASSES)
    assert not (tmp_path / "weights.msgpack").exists()
    path = tmp_path / "genotype.json"
    good = json.loads(path.read_text())
    other = {
        **good["cells"],
        "normal": [dict(r, ops=["none"] * len(r["ops"])) for r in good["cells"]["normal"]],
    }
    cases = [
        ({"space": "darts"}, "field 'space' is 'darts'"),
        ({"space_version": 2}, "field 'space_version' is 2"),
        ({"arch": [9] * len(arch)}, "field 'arch': nb201: arch[0]"),
        ({"cells": other}, "fields 'arch' and 'cells' describe different architectures"),
        ({"network": {**good["network"], "channels": 8}}, "field 'network.channels' is 8"),
    ]
    for change, message in cases:
        path.write_text(json.dumps({**good, **change}))
        with pytest.raises(ValueError, match=re.escape(message)):
            load_architecture(path, space)
    del good["arch"]
    path.write_text(json.dumps(good))
    with pytest.raises(ValueError, match="lacks the field 'arch'"):
        load_architecture(path)
    path.write_text("{")
    with pytest.raises(ValueError, match="genotype.json is not valid JSON"):
        load_architecture(path)


def test_load_weights_rejects_another_networks_weights(tmp_path):
    nb201, darts = SPACES["nb201"](**TINY), SPACES["darts"](**TINY)
    arch = darts.sample(jax.random.key(0))
    export_architecture(tmp_path, darts, arch, supernet=supernet(darts, SHAPE, CLASSES))
    model = child_net(nb201, nb201.sample(jax.random.key(0)), SHAPE, CLASSES)
    with pytest.raises(ValueError, match="weights.msgpack: not the weights of this network"):
        load_weights(model, tmp_path / "weights.msgpack")


def test_ops_registered_outside_the_package_are_not_exported(tmp_path, monkeypatch):
    monkeypatch.setitem(OPS, "conv7x7", lambda c, *, rngs: ReLUConvBN(c, c, 7, rngs=rngs))
    cell = Cell(1, (Node((0,), 1),), ("conv7x7",), output="last")
    space = SearchSpace("mine", {"normal": cell}, Skeleton(channels=4, cells_per_stage=1))
    with pytest.raises(ValueError, match=r"outside nas.ops \(conv7x7\)"):
        export_architecture(tmp_path, space, [0], input_shape=SHAPE, num_classes=CLASSES)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A finished tiny nb201 search."""
    out = tmp_path_factory.mktemp("search") / "run"
    options = ["--channels", "4", "--cells", "1", "--warmup-steps", "2", "--train-steps", "1"]
    args = ["search", "--space", "nb201", "--budget", "3", "--top", "3", "--out", str(out)]
    assert main([*args, *options, "--batch-size", "16", "--no-progress"]) == 0
    return out


def test_cli_exports_the_top_architectures_with_the_runs_weights(run_dir, tmp_path, capsys):
    net = load_supernet(run_dir)
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--top", "2", "--out", str(out)]) == 0
    top = json.loads((run_dir / "results.json").read_text())["top"]
    for rank in (1, 2):
        folder = out / f"rank{rank}"
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["genotype.json", "model.py", "weights.msgpack"]
        loaded = load_architecture(folder)
        assert list(loaded.arch) == top[rank - 1]["arch"]
        assert loaded.score == top[rank - 1]["score"]
        model = loaded.build_model(weights=folder / "weights.msgpack")
        np.testing.assert_allclose(model(images()), net(images(), loaded.arch), atol=1e-5)
    assert not (out / "rank3").exists()
    assert "rank2" in capsys.readouterr().out

    assert main(["export", str(run_dir), "--out", str(out)]) == 2
    assert "holds an export already" in capsys.readouterr().err


def test_cli_export_of_a_run_without_shared_weights(run_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(export_run, "restore_evaluator", lambda path: None)
    out = tmp_path / "export"
    (out / "rank1").mkdir(parents=True)
    (out / "rank1" / "weights.msgpack").write_bytes(b"an earlier export's")
    assert main(["export", str(run_dir), "--out", str(out), "--overwrite"]) == 0
    assert "no weights" in capsys.readouterr().out
    assert sorted(p.name for p in (out / "rank1").iterdir()) == ["genotype.json", "model.py"]


def test_cli_export_without_weights_reads_no_checkpoint(run_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(export_run, "restore_evaluator", pytest.fail)
    out = tmp_path / "export"
    assert main(["export", str(run_dir), "--top", "3", "--out", str(out), "--no-weights"]) == 0
    assert sorted(p.name for p in (out / "rank3").iterdir()) == ["genotype.json", "model.py"]
    assert load_architecture(out / "rank3").input_shape == SHAPE


def test_cli_export_names_the_file_that_is_wrong(run_dir, tmp_path, capsys):
    broken = tmp_path / "run"
    broken.mkdir()
    shutil.copy(run_dir / "config.json", broken)
    cases = [
        (None, ["--top", "1"], "results.json does not exist"),
        ("{not json", ["--top", "1"], "results.json is not valid JSON"),
        (
            (run_dir / "results.json").read_text(),
            ["--top", "9"],
            "results.json holds 3 architectures; cannot export the top 9",
        ),
    ]
    for text, options, message in cases:
        if text is not None:
            (broken / "results.json").write_text(text)
        assert main(["export", str(broken), *options, "--no-weights"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("nas export: error: ") and message in err, err
    assert main(["export", str(tmp_path / "missing"), "--no-weights"]) == 2
    assert "config.json does not exist" in capsys.readouterr().err
