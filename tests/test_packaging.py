"""The package as installed: compiled modules present, no source needed at run time."""
import os
from pathlib import Path

import pytest

import hftcore
import hftcore_ext.bus
import hftcore_ext.candles
import hftcore_ext.csvscan
import hftcore_ext.indicators
import hftcore_ext.lane
import hftcore_ext.ledger
import hftcore_ext.paper
import hftcore_ext.ticker


def test_every_core_module_is_a_compiled_extension():
    for m in (hftcore_ext.bus, hftcore_ext.candles, hftcore_ext.indicators, hftcore_ext.ledger,
              hftcore_ext.ticker, hftcore_ext.csvscan, hftcore_ext.lane, hftcore_ext.paper):
        assert m.__file__.endswith(".so"), m.__file__
    assert hftcore.COMPILED


@pytest.mark.skipif(not os.environ.get("HFTCORE_TEST_INSTALLED"),
                    reason="only meaningful against the installed wheel (make test)")
def test_tests_run_against_the_installed_wheel_not_the_source_tree():
    repo = Path(__file__).resolve().parents[1]
    pkg = Path(hftcore_ext.ledger.__file__).resolve()
    assert "site-packages" in pkg.parts and pkg.parent != repo / "hftcore_ext"
    assert not list(pkg.parent.glob("*.pyx")) and not list(pkg.parent.glob("*.c"))
