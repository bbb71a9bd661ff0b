"""System metrics sampled while a run runs: series under system/, peaks on the record.

The GPU is the one thing faked: a `nvidia-smi` script on PATH (NVML is not installed here,
so the sampler falls back to it, as on a machine without nvidia-ml-py).
"""

from __future__ import annotations

import json
import os
import stat

import pytest

import expledger
from expledger.store import open_store

from .conftest import LEDGER, run_exp

FAKE_SMI = """#!/bin/sh
case "$*" in
  *memory.used*) echo "0, 22000, 87"; echo "1, 1500, 3";;
  *) echo "0, NVIDIA A100-SXM4-40GB, 40960, 550.54"; echo "1, NVIDIA A100-SXM4-40GB, 40960, 550.54";;
esac
"""
CHILD = "import time; block = bytearray(30_000_000); time.sleep(1.5)"


@pytest.fixture
def gpu_env(tmp_path):
    """The environment of a machine with two fake GPUs, sampling every 0.2 s."""
    folder = tmp_path / "fakebin"
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "EXP_SYSTEM_INTERVAL": "0.2"}


def _run(store_url, env, *extra, child=CHILD):
    result = run_exp("--store", store_url, "run", "--name", "probe", *extra, "--", "python", "-c", child, env=env)
    assert result.code == 0, result.err
    with open_store(store_url) as store:
        exp = store.get("1")
        return exp, store.read_steps(exp)


def test_exp_run_records_gpu_series_and_peaks_that_queries_find(store_url, gpu_env):
    exp, steps = _run(store_url, gpu_env)
    assert {"system/gpu0_mem_mb", "system/gpu0_util", "system/gpu1_mem_mb", "system/rss_mb"} <= set(steps)
    assert set(steps["system/gpu0_mem_mb"][1]) == {22000.0}
    assert exp.system["gpu_mem_peak_mb"] == 22000 and exp.system["gpu_util_peak"] == 87
    assert exp.system["rss_peak_mb"] > 20  # the child's 30 MB block
    assert exp.system["samples"] >= 2 and exp.system["interval"] == 0.2
    assert not any(name.startswith("system/") for name in exp.metrics)  # peaks are not results
    found = run_exp("--store", store_url, "list", "--where", "system.gpu_mem_peak_mb > 20000", "--json")
    assert [e["id"] for e in json.loads(found.out)["experiments"]] == ["EXP-001"]
    none = run_exp("--store", store_url, "list", "--where", "system.gpu_mem_peak_mb > 30000", "--json")
    assert json.loads(none.out)["experiments"] == []
    table = run_exp("--store", store_url, "list", "--columns", "id,system.gpu_mem_peak_mb", "--sort",
                    "-system.gpu_mem_peak_mb")
    assert "22000" in table.out


def test_samples_never_add_ledger_lines(tmp_path, gpu_env):
    url = str(tmp_path / LEDGER)
    _run(url, {**gpu_env, "EXP_SYSTEM_INTERVAL": "0"})
    quiet_lines = len((tmp_path / LEDGER).read_text().splitlines())
    _run(url, gpu_env)
    assert len((tmp_path / LEDGER).read_text().splitlines()) == 2 * quiet_lines


def test_interval_zero_records_nothing(tmp_path, gpu_env):
    exp, steps = _run(str(tmp_path / LEDGER), {**gpu_env, "EXP_SYSTEM_INTERVAL": "0"})
    assert exp.system == {} and not any(name.startswith("system/") for name in steps)


def test_only_the_runs_visible_gpus_are_read(tmp_path, gpu_env):
    exp, steps = _run(str(tmp_path / LEDGER), {**gpu_env, "CUDA_VISIBLE_DEVICES": "1"})
    assert "system/gpu1_mem_mb" in steps and "system/gpu0_mem_mb" not in steps
    assert exp.system["gpu_mem_peak_mb"] == 1500


def test_a_broken_or_missing_gpu_tool_is_silent(tmp_path, gpu_env):
    broken = tmp_path / "fakebin" / "nvidia-smi"
    broken.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver'\n"
                      "exit 9\n")
    result = run_exp("run", "--name", "cpu only", "--", "python", "-c", CHILD, env=gpu_env)
    assert result.code == 0 and "warning" not in result.err
    with open_store(str(tmp_path / LEDGER)) as store:
        exp = store.get("1")
        steps = store.read_steps(exp)
    assert "system/rss_mb" in steps and not any("gpu" in name for name in steps)
    assert "gpu_mem_peak_mb" not in exp.system and exp.system["rss_peak_mb"] > 0


def test_the_python_api_samples_its_own_process(tmp_path, monkeypatch):
    monkeypatch.setenv("EXP_SYSTEM_INTERVAL", "0.2")
    import time

    with expledger.start(name="api") as run:
        run.log({"loss": 1.0}, step=0)
        time.sleep(1.2)
    with open_store(str(tmp_path / LEDGER)) as store:
        exp = store.get(run.id)
        steps = store.read_steps(exp)
    assert "system/rss_mb" in steps and exp.system["rss_peak_mb"] > 0
    assert exp.metrics == {"loss": 1.0}
