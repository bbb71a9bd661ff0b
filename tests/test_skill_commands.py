"""Every command in SKILL.md's code blocks exists with the flags shown and succeeds, in order."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SKILL = REPO / "skills" / "experiment-manager" / "SKILL.md"
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def code_blocks() -> list[tuple[str, str]]:
    """(language, text) of every fenced block, in document order."""
    return [(match.group(1), match.group(2)) for match in BLOCK.finditer(SKILL.read_text(encoding="utf-8"))]


def commands(block: str) -> list[str]:
    """A bash block's commands: continuation lines joined, comments and blank lines left out."""
    out, current = [], ""
    for line in block.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line[:-1] + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            out.append(current)
            current = ""
    return out


def test_the_blocks_hold_the_commands_an_assistant_needs():
    shown = " ".join(cmd for lang, text in code_blocks() if lang == "bash" for cmd in commands(text))
    for needed in ("list", "add", "result", "compare", "queue", "check", "--unless-tried", "run", "export", "--fields"):
        assert f" {needed}" in shown, needed


def test_every_command_in_skill_md_runs_in_order(tmp_path):
    shutil.copytree(REPO / "skills", tmp_path / "skills")
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXP_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", EXP_MACHINE="testbox")
    ran = 0
    for lang, text in code_blocks():
        if lang == "bash":
            for command in commands(text):
                proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True,
                                      text=True, timeout=120, check=False)
                assert proc.returncode == 0, (command, proc.stderr)
                assert "Traceback" not in proc.stderr, command
                ran += 1
        elif lang == "python":
            proc = subprocess.run([sys.executable, "-c", text], cwd=tmp_path, env=env, capture_output=True,
                                  text=True, timeout=120, check=False)
            assert proc.returncode == 0, (text, proc.stderr)
            ran += 1
        elif lang == "json":
            json.loads(text)
    assert ran >= 15
    listed = json.loads(subprocess.run(
        ["python3", "skills/experiment-manager/scripts/exp_tracker.py", "list", "--json", "--limit", "0"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout)
    assert {e["status"] for e in listed["experiments"]} >= {"SUCCESS", "FAILED", "QUEUED"}
