"""The persistent compilation cache: which folder an option names, and that a later process
loads what an earlier one compiled there."""

import json
import os
import subprocess
import sys
from pathlib import Path

from nas import compile_cache


def test_an_option_names_a_folder_or_turns_the_cache_off(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("JAX_COMPILATION_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert compile_cache.resolve("none") is None
    assert compile_cache.resolve("~/mine") == str(tmp_path / "mine")
    assert compile_cache.resolve(None) == str(tmp_path / ".cache" / "nas" / "jax")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.resolve(None) == str(tmp_path / "xdg" / "nas" / "jax")
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "jax"))
    assert compile_cache.resolve(None) == str(tmp_path / "jax")


# Enables the cache as the option says, compiles one program and prints how many compiles the
# cache answered (each eager op compiles too): a process of its own, since the cache is a
# setting of the whole process.
PROGRAM = """
import sys, jax, jax.numpy as jnp
from nas import compile_cache
hits = []
jax.monitoring.register_event_listener(
    lambda event, **_: hits.append(1) if event == "/jax/compilation_cache/cache_hits" else None
)
print(compile_cache.enable(sys.argv[1]))
jax.jit(lambda x: jnp.sin(x) @ x.T)(jnp.ones((8, 8))).block_until_ready()
print(len(hits))
"""


def _compile_in_a_new_process(option: str, jax_variable: Path) -> tuple[str, int]:
    """The folder in use and the cache hits of `PROGRAM`, with JAX's own variable naming
    another folder (as this test session's conftest sets it)."""
    env = {
        **os.environ,
        "JAX_COMPILATION_CACHE_DIR": str(jax_variable),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # JAX would keep every compile there
    }
    command = [sys.executable, "-c", PROGRAM, option]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env)
    folder, hits = out.stdout.split()
    return folder, int(hits)


def test_a_later_process_loads_what_an_earlier_one_compiled(tmp_path):
    folder, variable = tmp_path / "cache", tmp_path / "variable"
    assert _compile_in_a_new_process(str(folder), variable) == (str(folder), 0)
    assert any(folder.iterdir())
    folder_again, hits = _compile_in_a_new_process(str(folder), variable)
    assert folder_again == str(folder) and hits > 0
    assert _compile_in_a_new_process("none", variable) == ("None", 0)
    assert not variable.exists() or not any(variable.iterdir())


def test_a_search_keeps_its_compiled_steps_in_the_folder_it_is_given(tmp_path):
    folder, out = tmp_path / "cache", tmp_path / "run"
    flags = "--channels 4 --cells 1 --warmup-steps 1 --train-steps 1 --budget 2 --no-progress"
    command = [sys.executable, "-m", "nas", "search", *flags.split(), "--out", str(out)]
    subprocess.run([*command, "--compile-cache", str(folder)], check=True, capture_output=True)
    assert len(list(folder.iterdir())) >= 2  # the train and eval steps at least
    saved = json.loads(Path(out / "config.json").read_text())
    assert saved["compile_cache"] == str(folder)
