#!/usr/bin/env python3
"""The seed's command, kept working verbatim: a thin shim over the `exp` CLI.

    python3 skills/experiment-manager/scripts/exp_tracker.py list|add|result|compare|queue …
"""

import sys
from pathlib import Path

try:
    from expledger.cli import main
except ImportError:
    # Inside the expledger repository itself, use its source tree.
    source = Path(__file__).resolve().parents[3] / "src"
    if not (source / "expledger").is_dir():
        sys.exit("error: expledger is not installed: run `pip install expledger` (or `pip install .` in its repository)")
    sys.path.insert(0, str(source))
    from expledger.cli import main

if __name__ == "__main__":
    sys.exit(main())
