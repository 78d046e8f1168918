"""The cluster/ recipes: each file has what Ray's cluster launcher, Ray jobs or KubeRay read,
each `nas search` they run parses with the CLI's own parser, and the job entrypoint of
cluster/submit.sh runs a search on a separately started local Ray head."""

import copy
import fnmatch
import json
import math
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from pathlib import Path

import jsonschema
import psutil
import pytest
import ray
import yaml
from packaging.specifiers import SpecifierSet
from ray._private.accelerators import TPUAcceleratorManager
from ray._private.runtime_env.packaging import PACKAGE_SIZE_WARNING, create_package
from ray.autoscaler._private.util import prepare_config, validate_config
from ray.dashboard.modules.job.cli import submit as ray_job_submit
from ray.runtime_env import RuntimeEnv

from nas.cli import _parser, _resolve

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
LAUNCHER = {"aws-gpu.yaml": "aws", "gcp-tpu.yaml": "gcp"}  # `ray up` configs: provider
PIP_WORKING_DIR = "${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}"  # pip-installs the job's working dir
SHELL_OPERATORS = {"&&", "||", ";", "|", "&", ">", ">>", "2>&1"}


def _load(name: str):
    return yaml.safe_load((CLUSTER / name).read_text(encoding="utf-8"))


def _searches(tokens: list[str]) -> list[list[str]]:
    """The arguments of each `nas search` in a tokenized shell command, also in quoted ones."""
    found = []
    for i, token in enumerate(tokens):
        if token == "nas" and tokens[i + 1 : i + 2] == ["search"]:
            args = []
            for arg in tokens[i + 2 :]:
                if arg in SHELL_OPERATORS:
                    break
                args.append(arg)
            found.append(args)
        elif " " in token and "nas search" in token:  # ray exec '...', bash -c '...'
            found += _searches(shlex.split(token))
    return found


def _shell_searches(text: str) -> list[list[str]]:
    """Each `nas search` in shell text (continued lines joined)."""
    found = []
    for line in text.replace("\\\n", " ").splitlines():
        if "nas search" in line:
            found += _searches(shlex.split(line, comments=True))
    return found


def _file_searches(name: str) -> list[list[str]]:
    """Each `nas search` in a cluster/ YAML file (strings, comments) or README (shell blocks)."""
    text = (CLUSTER / name).read_text(encoding="utf-8")
    if name.endswith(".md"):
        blocks = re.findall(r"```(?:bash|sh|console)?\n(.*?)```", text, re.DOTALL)
        return [args for block in blocks for args in _shell_searches(block)]
    comments = [line.split("#", 1)[1] for line in text.splitlines() if line.lstrip()[:1] == "#"]
    found = _shell_searches("\n".join(comments))

    def strings(node):
        if isinstance(node, dict):
            return [s for value in node.values() for s in strings(value)]
        if isinstance(node, list):
            return [s for value in node for s in strings(value)]
        return [node] if isinstance(node, str) else []

    for document in yaml.safe_load_all(text):
        found += [args for s in strings(document) for args in _shell_searches(s)]
    return found


def _config(args: list[str]):
    """The `SearchConfig` of `nas search ARGS`, read by the CLI's own parser and checks."""
    try:
        parsed = _parser().parse_args(["search", *args])
    except SystemExit:
        pytest.fail(f"the nas CLI rejects `nas search {shlex.join(args)}` (see stderr)")
    return _resolve(parsed)


def _submit_argv(tmp_path: Path, *flags: str) -> tuple[list[str], Path]:
    """The `ray` command line cluster/submit.sh runs and its directory, via a stand-in `ray`."""
    bin_dir, record = tmp_path / "bin", tmp_path / "ray_argv.json"
    bin_dir.mkdir()
    stub = bin_dir / "ray"
    stub.write_text(
        f"#!{sys.executable}\nimport json, os, sys\n"
        f"json.dump({{'argv': sys.argv[1:], 'cwd': os.getcwd()}}, open({str(record)!r}, 'w'))\n"
    )
    stub.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env["NAS_JOB_ID"] = "nas-test"
    subprocess.run(
        ["bash", str(CLUSTER / "submit.sh"), *flags], env=env, cwd=tmp_path, check=True, timeout=60
    )
    recorded = json.loads(record.read_text())
    return recorded["argv"], Path(recorded["cwd"])


def _job_parts(argv: list[str]) -> tuple[dict, list[str]]:
    """The options and the entrypoint of a `ray job submit` command line, parsed by Ray's CLI."""
    assert argv[:2] == ["job", "submit"], argv
    params = ray_job_submit.make_context("submit", argv[2:]).params
    return params, list(params["entrypoint"])


def test_every_yaml_parses():
    names = sorted(p.name for p in CLUSTER.glob("*.yaml"))
    assert {*LAUNCHER, "kuberay-rayjob.yaml", "runtime_env.yaml"} <= set(names)
    for name in names:
        documents = list(yaml.safe_load_all((CLUSTER / name).read_text(encoding="utf-8")))
        assert documents and all(isinstance(d, dict) for d in documents), name


@pytest.mark.parametrize("name", [*sorted(LAUNCHER), "kuberay-rayjob.yaml", "README.md"])
def test_every_nas_search_command_parses(name):
    commands = _file_searches(name)
    assert commands, f"no `nas search` command in cluster/{name}"
    for args in commands:
        config = _config(args)
        assert config.workers >= 1, f"{name}: `nas search {shlex.join(args)}` uses no Ray workers"


@pytest.mark.parametrize("name", sorted(LAUNCHER))
def test_cluster_launcher_config(name):
    config = _load(name)
    schema_path = Path(ray.autoscaler.__file__).parent / "ray-schema.json"
    jsonschema.validate(config, json.loads(schema_path.read_text()))
    prepared = prepare_config(copy.deepcopy(config))  # as `ray up` does: defaults, then checks
    validate_config(prepared)
    assert config["provider"]["type"] == LAUNCHER[name]

    head = config["head_node_type"]
    workers = {k: t for k, t in config["available_node_types"].items() if k != head}
    assert workers and all(t.get("max_workers", 0) >= 1 for t in workers.values())
    worker_setup = " ".join(prepared["worker_setup_commands"])
    if LAUNCHER[name] == "aws":
        gpu_families = ("g4dn.", "g5.", "g6.", "g6e.", "p3.", "p4d.", "p5.")
        assert all(
            t["node_config"]["InstanceType"].startswith(gpu_families) for t in workers.values()
        )
        assert '"jax[cuda12]"' in worker_setup
        capacity = sum(t["max_workers"] for t in workers.values())  # one GPU a node, at least
        per_worker = "gpus_per_worker"
    else:
        for t in workers.values():
            node = t["node_config"]
            assert TPUAcceleratorManager.is_valid_tpu_accelerator_type(node["acceleratorType"])
            assert node["runtimeVersion"] and t["resources"]["TPU"] >= 1
            assert t["resources"]["CPU"] >= 1
        capacity = sum(t["max_workers"] * t["resources"]["TPU"] for t in workers.values())
        assert '"jax[tpu]"' in worker_setup
        per_worker = "tpus_per_worker"

    # Each usage line runs a search on the cluster's head, joining its Ray, within its chips.
    usage = [line for line in (CLUSTER / name).read_text().splitlines() if "ray exec" in line]
    assert usage
    for line in usage:
        for args in _shell_searches(line.lstrip("# ")):
            search = _config(args)
            assert search.address == "auto", line
            assert 0 < search.workers * getattr(search, per_worker) <= capacity, line


@pytest.mark.parametrize("name", sorted(LAUNCHER))
def test_cluster_launcher_installs_this_project(name):
    config = _load(name)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    packages = {
        p.name
        for p in ROOT.iterdir()
        if (p / "__init__.py").exists() and any(fnmatch.fnmatch(p.name, i) for i in include)
    }
    needed = {"pyproject.toml", pyproject["project"]["readme"], *packages}
    mounted = {}
    for remote, local in config["file_mounts"].items():
        assert (ROOT / local).exists(), f"{name}: file_mounts {local} (from the repository root)"
        mounted[Path(local).as_posix()] = remote
    assert needed <= set(mounted), f"{name}: `pip install -e ~/nas` needs {needed - set(mounted)}"
    assert all(mounted[local] == f"~/nas/{local}" for local in needed)

    setup = config["setup_commands"]
    assert any("-e ~/nas" in command for command in setup), setup
    (python,) = re.findall(r"--python (\d+\.\d+)", " ".join(setup))
    assert f"{python}.0" in SpecifierSet(pyproject["project"]["requires-python"])


def test_kuberay_rayjob():
    (job,) = yaml.safe_load_all((CLUSTER / "kuberay-rayjob.yaml").read_text(encoding="utf-8"))
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob" and job["metadata"]["name"]
    spec = job["spec"]
    (args,) = _shell_searches(spec["entrypoint"])
    assert shlex.split(spec["entrypoint"])[:2] == ["nas", "search"]
    search = _config(args)
    assert Path(search.out).is_absolute()  # not inside the job's temporary working directory

    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    RuntimeEnv(**runtime_env)  # Ray's own checks
    assert runtime_env["working_dir"].endswith(".zip")
    assert {"jax[cuda12]", PIP_WORKING_DIR} <= set(runtime_env["pip"])

    cluster = spec["rayClusterSpec"]
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    for group in groups:
        assert all(isinstance(v, str) for v in group["rayStartParams"].values())
        (container, *_) = group["template"]["spec"]["containers"]
        assert container["name"] and container["image"].startswith("rayproject/ray:")
    gpus = 0
    for group in cluster["workerGroupSpecs"]:
        assert group["groupName"] and group["minReplicas"] <= group["replicas"]
        assert group["replicas"] <= group["maxReplicas"]
        (container,) = group["template"]["spec"]["containers"]
        gpus += group["maxReplicas"] * int(
            container["resources"]["limits"].get("nvidia.com/gpu", 0)
        )
    assert 0 < search.workers * search.gpus_per_worker <= gpus


def test_one_ray_version_throughout():
    texts = [p.read_text(encoding="utf-8") for p in sorted(CLUSTER.iterdir()) if p.is_file()]
    pins = {v for text in texts for v in re.findall(r"ray\[default\]==([\d.]+)", text)}
    images = {v for text in texts for v in re.findall(r"rayproject/ray:([\d.]+)", text)}
    (job,) = yaml.safe_load_all((CLUSTER / "kuberay-rayjob.yaml").read_text(encoding="utf-8"))
    assert len(pins | images | {job["spec"]["rayClusterSpec"]["rayVersion"]}) == 1


def test_runtime_env_ships_this_checkout_and_installs_it(tmp_path):
    runtime_env = _load("runtime_env.yaml")
    RuntimeEnv(**runtime_env)  # Ray's own checks
    assert runtime_env["working_dir"] == "." and PIP_WORKING_DIR in runtime_env["pip"]
    package = tmp_path / "working_dir.zip"  # what Ray uploads, .gitignore or not
    create_package(str(ROOT), package, include_gitignore=False, excludes=runtime_env["excludes"])
    names = zipfile.ZipFile(package).namelist()
    assert {"pyproject.toml", "nas/cli.py", "cluster/submit.sh"} <= set(names)
    assert not [n for n in names if n.startswith((".venv/", "runs/", ".git/"))]
    assert package.stat().st_size < PACKAGE_SIZE_WARNING


def test_submit_recipe(tmp_path):
    argv, cwd = _submit_argv(tmp_path, "--budget", "7", "--gpus-per-worker", "0.5")
    params, entrypoint = _job_parts(argv)
    assert (cwd / params["runtime_env"]).resolve() == CLUSTER / "runtime_env.yaml"
    assert params["submission_id"] == "nas-test"
    assert entrypoint[:2] == ["nas", "search"]
    search = _config(entrypoint[2:])
    assert search.workers >= 1 and search.budget == 7 and search.gpus_per_worker == 0.5
    assert Path(search.out).is_absolute() and Path(search.out).name == "nas-test"


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _stop(process: subprocess.Popen) -> None:
    """Kills `process` and every process it started (not other Ray instances on this machine)."""
    try:
        root = psutil.Process(process.pid)
        family = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for p in family:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(family, timeout=15)


@pytest.mark.slow
def test_submit_recipe_entrypoint_runs_on_a_local_ray_head(tmp_path, compile_cache):
    """The job's `nas search`, with tiny options, against a head from `ray start --head`."""
    out = tmp_path / "run"
    tiny = "--workers 1 --budget 3 --channels 4 --cells 1 --warmup-steps 2 --train-steps 1"
    cache = ["--compile-cache", str(compile_cache)]  # shared with the other tests' workers
    flags = [*tiny.split(), "--batch-size", "32", "--out", str(out), *cache, "--no-progress"]
    argv, _ = _submit_argv(tmp_path, *flags)
    _, entrypoint = _job_parts(argv)
    assert entrypoint[:2] == ["nas", "search"]
    nas = shutil.which("nas", path=str(Path(sys.executable).parent))
    command = [nas] if nas else [sys.executable, "-m", "nas"]

    # Ray with token authentication, as `ray start --head` runs when ~/.ray/auth_token exists.
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    names = ["--port", "--dashboard-port", "--dashboard-agent-listen-port"]
    names += ["--dashboard-agent-grpc-port", "--runtime-env-agent-port"]
    ports = dict(zip(names, _free_ports(len(names))))  # none of Ray's fixed default ports
    temp_dir = tempfile.mkdtemp(prefix="nasray-", dir="/tmp")  # short: Ray's socket paths
    ray_cli = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"
    head_log, driver = tmp_path / "head.log", None
    with head_log.open("w") as log:
        head = subprocess.Popen(
            [ray_cli, "start", "--head", "--block", "--num-cpus", "2", "--temp-dir", temp_dir]
            + ["--include-dashboard", "false", "--disable-usage-stats"]
            + [x for name, port in ports.items() for x in (name, str(port))],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while "Ray runtime started" not in head_log.read_text():
            assert head.poll() is None and time.monotonic() < deadline, head_log.read_text()
            time.sleep(0.5)
        driver = subprocess.Popen(
            command + entrypoint[1:] + ["--address", f"127.0.0.1:{ports['--port']}"],
            cwd=ROOT,  # the job's working directory
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stdout, stderr = driver.communicate(timeout=240)
        assert driver.returncode == 0, stdout[-3000:] + stderr[-6000:]
        logs = Path(temp_dir, "session_latest", "logs")
        assert list(logs.glob(f"python-core-driver-*_{driver.pid}.log")), "it ran elsewhere"
    finally:
        for process in (driver, head):
            if process is not None:
                _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)

    assert json.loads((out / "results.json").read_text())["evaluations"] == 3
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    evals = [e for e in events if e["event"] == "eval"]
    assert sorted(e["index"] for e in evals) == [0, 1, 2]
    assert all(e["error"] is None and math.isfinite(e["score"]) for e in evals)
    (workers,) = [e for e in events if e["event"] == "workers"]
    assert workers["nodes"] == 1 and workers["retries"] == 0
    assert any(Path(compile_cache).iterdir())  # --compile-cache reached the worker
