"""The build: setup.py is the one source of compiler directives, so HFTCORE_DEBUG=1 really
checks bounds; importing an uncompiled source tree says what to do.

The debug/normal builds compile one module (ledger) from a copy of the sources into a
temporary folder, with a probe function appended that indexes a memoryview, and run the
probe in a subprocess that imports only that copy.
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXT = ROOT / "hftcore_ext"
MODULES = ("bus", "indicators", "candles", "ledger")

PROBE = '''

def _probe_index(const long long[:] a, Py_ssize_t i):
    """Test probe (appended by tests/test_build.py): a[i] with whatever checks the build has."""
    return a[i]
'''

RUN_PROBE = """
import numpy as np
from hftcore_ext.ledger import _probe_index
base = np.arange(10, dtype=np.int64) * 11
view = base[2:6]                      # 4 elements; the parent has more on both sides
for i in (4, -1):
    try:
        print(i, "value", _probe_index(view, i))
    except IndexError as exc:
        print(i, "IndexError", exc)
"""


def _needs_toolchain():
    pytest.importorskip("Cython", minversion="3")
    pytest.importorskip("setuptools")
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler")
    if not (ROOT / "setup.py").exists():
        pytest.skip("no source tree (setup.py) next to the tests")


def _build(tmp: Path, debug: bool) -> dict:
    """Copy setup.py + hftcore_ext sources into ``tmp``, append the probe to ledger.pyx,
    build only ledger (HFTCORE_MODULES) and run the probe; returns {index: output}."""
    src = tmp / "src"
    (src / "hftcore_ext").mkdir(parents=True)
    shutil.copy(ROOT / "setup.py", src / "setup.py")
    for f in EXT.iterdir():
        if f.suffix in (".pyx", ".pxd", ".py"):
            shutil.copy(f, src / "hftcore_ext" / f.name)
    with open(src / "hftcore_ext" / "ledger.pyx", "a") as fh:
        fh.write(PROBE)
    out = tmp / "lib"
    # these probes import from their working folder on purpose: no PYTHONSAFEPATH here
    env = {k: v for k, v in os.environ.items()
           if k not in ("HFTCORE_DEBUG", "HFTCORE_MARCH", "PYTHONSAFEPATH")}
    env["HFTCORE_MODULES"] = "ledger"
    if debug:
        env["HFTCORE_DEBUG"] = "1"          # -O0 -g, bounds checks on
    r = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(out),
                        "--build-temp", str(tmp / "tmpbuild")],
                       check=False, cwd=src, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    built = list((out / "hftcore_ext").glob("ledger*"))
    assert built, f"no ledger extension in {out}"
    # only ledger is built: the package must import with just it, so give it a bare __init__
    (out / "hftcore_ext" / "__init__.py").write_text("")
    r = subprocess.run([sys.executable, "-c", RUN_PROBE], check=False, cwd=out, capture_output=True,
                       text=True, timeout=60, env={**env, "PYTHONPATH": ""})
    assert r.returncode == 0, r.stderr[-3000:]
    assert str(out) in subprocess.run(
        [sys.executable, "-c", "import hftcore_ext.ledger as m; print(m.__file__)"], check=False,
        cwd=out,
        capture_output=True, text=True, env={**env, "PYTHONPATH": ""}).stdout
    return {int(line.split()[0]): line.split(None, 1)[1] for line in r.stdout.splitlines()}


def test_sources_carry_no_directive_header():
    """A `# cython:` header in a module overrides setup.py's directives (bounds checks
    could never be turned on for it); setup.py is the one source."""
    for f in sorted(EXT.glob("*.pyx")) + sorted(EXT.glob("*.pxd")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if re.match(r"\s*#\s*cython\s*:", line):
                assert "boundscheck" not in line and "wraparound" not in line \
                    and "initializedcheck" not in line, f"{f.name}:{n}: {line}"


def test_debug_build_checks_bounds_and_normal_build_does_not(tmp_path):
    _needs_toolchain()
    debug = _build(tmp_path / "debug", debug=True)
    assert debug[4].startswith("IndexError"), debug
    assert debug[-1] == "value 55", debug            # wraparound on: the view's last element
    normal = _build(tmp_path / "normal", debug=False)
    # no checks: index 4 reads the parent's next element, -1 the one before the view
    assert normal[4] == "value 66", normal
    assert normal[-1] == "value 11", normal


def test_uncompiled_source_tree_import_says_how_to_build(tmp_path):
    pkg = tmp_path / "hftcore_ext"
    pkg.mkdir()
    for f in EXT.iterdir():
        if f.suffix in (".pyx", ".pxd", ".py", ".pyi"):
            shutil.copy(f, pkg / f.name)
    r = subprocess.run([sys.executable, "-c", "from hftcore_ext import bus"], check=False,
                       cwd=tmp_path,
                       capture_output=True, text=True, timeout=60,
                       env={**{k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"},
                            "PYTHONPATH": ""})
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError:"), r.stderr
    assert "not built" in last and "build_ext --inplace" in last and "pip install" in last, last
    for m in MODULES:
        assert m in last


@pytest.mark.parametrize("module", MODULES)
def test_stub_classes_and_bases_match_the_compiled_module(module):
    """The .pyi stubs (what mypy sees) declare only classes the module has, with the bases
    it really has (indicators.pyi once declared RSI(EMA) and Slope(EMA))."""
    import ast
    import collections.abc
    import importlib
    mod = importlib.import_module(f"hftcore_ext.{module}")
    tree = ast.parse((EXT / f"{module}.pyi").read_text())
    classes = [n for n in tree.body if isinstance(n, ast.ClassDef)]
    assert classes
    for cls in classes:
        runtime = getattr(mod, cls.name, None)
        assert isinstance(runtime, type), f"{module}.pyi declares {cls.name}, not in the module"
        for base in cls.bases:
            if isinstance(base, ast.Subscript):        # Mapping[str, Any] -> Mapping
                base = base.value
            name = ast.unparse(base)
            declared = getattr(mod, name, None) or getattr(collections.abc, name, None)
            assert isinstance(declared, type) and issubclass(runtime, declared), \
                f"{module}.pyi: {cls.name}({name}) but {cls.name}.__mro__ is {runtime.__mro__}"
