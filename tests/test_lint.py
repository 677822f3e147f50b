"""Style and types as tests: ruff and mypy (configured in pyproject.toml) pass on the
package, its tests, benchmarks and examples, and on the compiled core's ``.pyi`` stubs.
Skipped only when a tool is not installed (``pip install ".[test]"`` installs both)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def tool(name):
    """The tool beside this interpreter (the test venv), else on PATH; skip if neither."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed")
    return found


def run(*argv):
    if not (ROOT / "pyproject.toml").exists() or not (ROOT / "hftcore").is_dir():
        pytest.skip("needs the source tree")
    out = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600)
    return out.returncode, (out.stdout + out.stderr).strip()


def test_ruff_finds_nothing():
    code, text = run(tool("ruff"), "check", "hftcore", "tests", "benches", "examples")
    assert code == 0, text


def test_mypy_finds_nothing_in_the_package_and_the_stubs():
    code, text = run(tool("mypy"))          # files: hftcore and hftcore_ext (its .pyi stubs)
    assert code == 0, text
    assert text.startswith("Success: no issues found in"), text
