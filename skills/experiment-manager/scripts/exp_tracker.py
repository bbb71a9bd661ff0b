#!/usr/bin/env python3
"""The seed's command, kept working verbatim: a thin shim over the `exp` CLI.

    python3 skills/experiment-manager/scripts/exp_tracker.py list|add|result|compare|queue …
"""

import sys
from pathlib import Path

INSTALL = "install it with `pip install .` in the expledger repository (see its README)"

try:
    from expledger.cli import main
except ImportError:
    # Inside the expledger repository itself, use its source tree.
    source = Path(__file__).resolve().parents[3] / "src"
    sys.path.insert(0, str(source))
    try:
        from expledger.cli import main
    except ImportError as err:
        sys.exit(f"error: expledger cannot be imported ({err}); {INSTALL}")

if __name__ == "__main__":
    sys.exit(main())
