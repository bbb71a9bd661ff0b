"""Build skills/experiment-manager/scripts/expledger.pyz: expledger and click in one file.

The skill folder must work when copied into any workspace with any `python3` >= 3.10 and
nothing installed; `exp_tracker.py` falls back to this zipapp when `expledger` cannot be
imported. The archive is reproducible (sorted entries, fixed timestamps), so rebuilding from
unchanged sources gives the same bytes. tests/test_skill_bundle.py fails while it is stale:
run this script after changing anything under src/expledger.

    python tools/build_skill_zipapp.py
"""

from __future__ import annotations

import sys
import zipfile
from importlib.metadata import distribution
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "skills" / "experiment-manager" / "scripts" / "expledger.pyz"
MAIN = b"""import sys

from expledger.cli import main

sys.exit(main())
"""
STAMP = (1980, 1, 1, 0, 0, 0)  # the earliest ZIP date: the same bytes on every build


def sources() -> dict[str, bytes]:
    """Archive name -> content: expledger's and click's Python files and click's licence."""
    import click

    files: dict[str, bytes] = {"__main__.py": MAIN}
    for package in (REPO / "src" / "expledger", Path(click.__file__).parent):
        for path in sorted(package.rglob("*.py")):
            files[path.relative_to(package.parent).as_posix()] = path.read_bytes()
    licence = next((f for f in distribution("click").files or () if f.name.upper().startswith("LICENSE")), None)
    if licence is not None:
        files["click/LICENSE.txt"] = licence.locate().read_bytes()
    return files


def build(target: Path = TARGET) -> Path:
    """Write the zipapp (with a `python3` shebang) and return its path."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".tmp")
    with open(partial, "wb") as handle:
        handle.write(b"#!/usr/bin/env python3\n")
        with zipfile.ZipFile(handle, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in sorted(sources().items()):
                info = zipfile.ZipInfo(name, STAMP)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, content)
    partial.chmod(0o755)
    partial.replace(target)
    return target


if __name__ == "__main__":
    path = build(Path(sys.argv[1]) if len(sys.argv) > 1 else TARGET)
    print(f"wrote {path} ({path.stat().st_size // 1024} KiB)")
