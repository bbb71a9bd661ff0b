#!/usr/bin/env python3
"""The seed's command, kept working verbatim: a thin shim over the `exp` CLI.

    python3 skills/experiment-manager/scripts/exp_tracker.py list|add|result|compare|queue …

Uses an installed `expledger` when there is one (`pip install expledger`), else the
expledger repository's source tree when the skill sits in it, else `expledger.pyz` next to
this file: expledger and click in one zipapp, so the copied skill folder works with any
python3 >= 3.10 and nothing installed.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

try:
    from expledger.cli import main
except ImportError:
    for fallback, probe in ((HERE.parents[2] / "src", "expledger"), (HERE / "expledger.pyz", "")):
        if (fallback / probe).exists():
            sys.path.insert(0, str(fallback))
            try:
                from expledger.cli import main
                break
            except ImportError:
                sys.path.remove(str(fallback))
    else:
        sys.exit(f"error: expledger cannot be imported and {HERE / 'expledger.pyz'} is missing; "
                 "copy the whole skill folder, or pip install expledger")

if __name__ == "__main__":
    sys.exit(main())
