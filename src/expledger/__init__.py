"""expledger: a local-first ledger of machine-learning experiments.

`import expledger` stays cheap: the store machinery loads on first use.

    run = expledger.start(name="lens", params={"lr": 1e-3})   # see expledger.run
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Experiment", "Run", "Search", "Status", "Store", "open_store", "start"]

_LAZY = {
    "Experiment": "expledger.models",
    "Status": "expledger.models",
    "Search": "expledger.store",
    "Store": "expledger.store",
    "open_store": "expledger.store",
    "Run": "expledger.run",
    "start": "expledger.run",
}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'expledger' has no attribute {name!r}")
