"""Searching on a Ray cluster of two nodes (simulated on this machine): workers on both nodes,
and a search that outlives the loss of one of them."""

import json

import pytest

ray = pytest.importorskip("ray")

from ray.cluster_utils import Cluster  # noqa: E402

from nas.config import SearchConfig  # noqa: E402
from nas.distributed import start_workers  # noqa: E402
from nas.experiment import run_search  # noqa: E402
from nas.search import search  # noqa: E402
from nas.space import load_space  # noqa: E402
from nas.strategies import RandomSearch  # noqa: E402

TINY = dict(channels=4, cells=1, warmup_steps=5, train_steps=2, batch_size=32)


@pytest.fixture(scope="module")
def cluster():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_workers_spread_over_the_nodes_of_a_cluster(cluster, tmp_path, compile_cache):
    out = tmp_path / "run"
    # Synchronous rounds wait for every worker to start; asynchronous ones begin with the first,
    # and on a busy machine could finish before the second node's worker is up.
    config = SearchConfig(
        workers=2, address=cluster.address, budget=8, out=str(out), sync=True,
        compile_cache=str(compile_cache), **TINY,
    )  # fmt: skip
    records, _ = run_search(config, progress=False)
    assert sorted(r.index for r in records) == list(range(8))
    log = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    (workers,) = [e for e in log if e["event"] == "workers"]
    assert workers["nodes"] == 2 and workers["retries"] == 0


def test_a_search_outlives_a_node(cluster, tmp_path, compile_cache):
    config = SearchConfig(workers=2, budget=12, **TINY)
    executor, _ = start_workers(config, cache_dir=str(compile_cache))
    nodes = {info["node"] for info in ray.get([w.info.remote() for w in executor.workers])}
    assert len(nodes) == 2  # one worker on each node
    removed = []

    def remove_node(record, best):
        if len(removed) < 1 and record.index >= 2:
            cluster.remove_node(cluster.list_all_nodes()[1])  # not the driver's (head) node
            removed.append(record.index)

    space = load_space("nb201", channels=4, cells_per_stage=1)
    try:
        records = search(
            space, RandomSearch(space), executor, budget=12, on_record=remove_node,
            asynchronous=True,
        )  # fmt: skip
    finally:
        stats = executor.close()
    assert removed and sorted(r.index for r in records) == list(range(12))
    assert all(r.error is None for r in records)
    # The lost node's worker cannot be restarted (no CPU left for it): the other one finished.
    assert stats["workers_up"] == 1 and stats["replaced"] == 0
