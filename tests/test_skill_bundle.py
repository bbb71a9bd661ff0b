"""The skill folder works alone: copied into any workspace, run by a python3 with nothing installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from tests.test_seed_quickstart import QUICK_START

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "skills" / "experiment-manager" / "scripts" / "expledger.pyz"


def test_the_bundled_zipapp_holds_the_current_sources():
    stale = "skills/experiment-manager/scripts/expledger.pyz is stale: run python tools/build_skill_zipapp.py"
    with zipfile.ZipFile(BUNDLE) as archive:
        bundled = {name: archive.read(name) for name in archive.namelist() if name.startswith("expledger/")}
        assert "click/__init__.py" in archive.namelist() and "__main__.py" in archive.namelist()
    source = REPO / "src" / "expledger"
    current = {f"expledger/{path.relative_to(source).as_posix()}": path.read_bytes() for path in source.rglob("*.py")}
    assert bundled.keys() == current.keys(), stale
    assert [name for name in current if bundled[name] != current[name]] == [], stale


def test_the_copied_skill_runs_the_seed_quick_start_with_a_bare_python(tmp_path):
    workspace = tmp_path / "workspace"
    shutil.copytree(REPO / "skills" / "experiment-manager", workspace / "skills" / "experiment-manager")
    venv = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("EXP_", "PYTHON"))}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", EXP_MACHINE="testbox")
    bare = subprocess.run(["python3", "-c", "import click"], env=env, capture_output=True, text=True, check=False)
    assert bare.returncode == 1 and "No module named 'click'" in bare.stderr
    assert subprocess.run(["python3", "-c", "import expledger"], env=env, capture_output=True, check=False).returncode == 1
    outputs = []
    for line in QUICK_START:
        proc = subprocess.run(["bash", "-c", line], cwd=workspace, env=env, capture_output=True, text=True, check=False,
                              timeout=120)
        assert proc.returncode == 0, (line, proc.stderr)
        outputs.append(proc.stdout)
    assert "EXP-001" in outputs[1] and "metrics.accuracy" in outputs[5]
    assert "EXP-001" in outputs[-1] and "EXP-003" not in outputs[-1]
    assert (workspace / "memory" / "experiments" / "experiments.jsonl").is_file()
