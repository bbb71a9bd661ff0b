"""The package's shape: a short sorted public API, lazy imports, every module importable alone."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import expledger


def test_all_is_sorted_and_every_name_resolves():
    assert expledger.__all__ == sorted(expledger.__all__)
    for name in expledger.__all__:
        assert getattr(expledger, name) is not None


def test_importing_the_package_loads_no_store_and_no_cli():
    code = "import sys, expledger; print(sorted(m for m in sys.modules if m.startswith('expledger')))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "['expledger']"


MODULES = sorted(m.name for m in pkgutil.walk_packages(expledger.__path__, "expledger.") if m.name != "expledger.__main__")


FRAMEWORKS = {"expledger.integrations.transformers": "transformers", "expledger.integrations.lightning": "lightning"}


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports_on_its_own(module):
    """In a fresh interpreter, so a circular import cannot hide behind an earlier one."""
    import importlib.util

    if module in FRAMEWORKS and importlib.util.find_spec(FRAMEWORKS[module]) is None:
        pytest.skip(f"{FRAMEWORKS[module]} is not installed: pip install 'expledger[{FRAMEWORKS[module]}]'")
    subprocess.run([sys.executable, "-c", f"import {module}"], check=True, capture_output=True)


def test_the_package_and_its_integrations_package_never_import_torch():
    code = ("import sys, expledger, expledger.run, expledger.integrations, expledger.integrations.common; "
            "print('torch' in sys.modules)")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "False"
