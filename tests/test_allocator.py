import os
import subprocess
import sys

import pytest

from nas import allocator


@pytest.fixture
def linux(monkeypatch):
    monkeypatch.setattr(allocator.sys, "platform", "linux")


def _finds(monkeypatch, libraries: dict):
    monkeypatch.setattr(allocator.ctypes.util, "find_library", libraries.get)


def test_tcmalloc_is_preloaded_where_installed(linux, monkeypatch):
    _finds(monkeypatch, {"tcmalloc": "libtcmalloc.so.4"})
    assert allocator.preload_environment({"HOME": "/h"}) == {
        "HOME": "/h",
        "LD_PRELOAD": "libtcmalloc.so.4",
    }
    _finds(monkeypatch, {"tcmalloc_minimal": "libtcmalloc_minimal.so.4"})
    assert allocator.preload_environment({})["LD_PRELOAD"] == "libtcmalloc_minimal.so.4"


def test_the_command_runs_as_it_is_where_nothing_is_to_be_preloaded(linux, monkeypatch):
    _finds(monkeypatch, {"tcmalloc": "libtcmalloc.so.4"})
    assert allocator.preload_environment({"LD_PRELOAD": "libjemalloc.so.2"}) is None
    assert allocator.preload_environment({"NAS_ALLOCATOR": "system"}) is None
    _finds(monkeypatch, {})
    assert allocator.preload_environment({}) is None
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator.preload_environment({"NAS_ALLOCATOR": "libtcmalloc.so.4"}) is None


def test_nas_allocator_names_the_library(linux, monkeypatch):
    _finds(monkeypatch, {"tcmalloc": "libtcmalloc.so.4"})
    environ = allocator.preload_environment({"NAS_ALLOCATOR": "/opt/lib/libjemalloc.so.2"})
    assert environ["LD_PRELOAD"] == "/opt/lib/libjemalloc.so.2"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="LD_PRELOAD is Linux's")
def test_a_command_starts_again_once_with_the_library_preloaded():
    # The C library itself stands in for tcmalloc, which this machine need not have.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["NAS_ALLOCATOR"] = "libc.so.6"
    code = (
        "import os; print('start', flush=True); "
        "from nas.allocator import restart_with_preloaded_allocator as restart; restart(); "
        "print(os.environ['LD_PRELOAD'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == ["start", "start", "libc.so.6"]
    spaces = subprocess.run(
        [sys.executable, "-m", "nas", "spaces"], env=env, capture_output=True, text=True
    )
    assert spaces.returncode == 0 and "nb201" in spaces.stdout
