"""Build the compiled core.  ``pip install .`` / ``pip wheel .`` run this.

HFTCORE_DEBUG=1 builds with bounds checks, line tracing and Cython's HTML
annotation (``hftcore_ext/*.html``); the normal build is -O3 with checks off.
HFTCORE_MARCH=x86-64-v3 (or native) targets a newer CPU (FMA, AVX2) for a
machine-specific build; wheels are built for the portable baseline.
HFTCORE_MODULES=ledger,candles builds only those modules (the build test uses it).
A compile error fails the build: there is no pure-Python fallback.

This file is the one source of Cython compiler directives: the ``.pyx``/``.pxd``
files carry no ``# cython:`` header (a header would override these, so the
debug build would silently keep bounds checks off).  A function that truly needs
a different directive says so with a decorator and a comment why.
"""
import os
import sys

from setuptools import Extension, setup

try:
    import Cython
    import numpy
    from Cython.Build import cythonize
except ImportError as exc:  # pragma: no cover - pip installs build deps from pyproject
    sys.exit(f"hftcore needs Cython>=3 and numpy to build: {exc}")

if int(Cython.__version__.split(".")[0]) < 3:
    sys.exit(f"hftcore needs Cython>=3,<4 to build, found {Cython.__version__}")

DEBUG = os.environ.get("HFTCORE_DEBUG", "") not in ("", "0")
MODULES = ["bus", "indicators", "candles", "ledger", "ticker", "lane", "csvscan", "paper"]
if os.environ.get("HFTCORE_MODULES"):
    wanted = [m.strip() for m in os.environ["HFTCORE_MODULES"].split(",") if m.strip()]
    unknown = sorted(set(wanted) - set(MODULES))
    if unknown:
        sys.exit(f"HFTCORE_MODULES: unknown module(s) {', '.join(unknown)}; known: {', '.join(MODULES)}")
    MODULES = [m for m in MODULES if m in wanted]

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "cdivision": True,
    "initializedcheck": DEBUG,
    "nonecheck": False,
    "embedsignature": True,
    # builtin-method calls (METH_FASTCALL) instead of cyfunction objects: ~10 ns less per call
    "binding": False,
    "linetrace": DEBUG,
    "profile": False,
}
macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if DEBUG:
    macros.append(("CYTHON_TRACE_NOGIL", "1"))
compile_args = ["-O0", "-g"] if DEBUG else ["-O3", "-fno-strict-aliasing"]
if os.environ.get("HFTCORE_MARCH"):
    compile_args.append(f"-march={os.environ['HFTCORE_MARCH']}")

extensions = [
    Extension(
        f"hftcore_ext.{name}",
        [f"hftcore_ext/{name}.pyx"],
        include_dirs=[numpy.get_include()],
        define_macros=macros,
        # the event lane's float sums must equal the Python they replaced, bit for bit
        extra_compile_args=compile_args + (["-ffp-contract=off"] if name == "lane" else []),
    )
    for name in MODULES
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives=directives,
        annotate=DEBUG,
        # A build that changed a directive must recompile: the debug C files go to
        # their own folder (always regenerated), so a later normal build never
        # reuses them.
        force=DEBUG,
        build_dir=os.path.join("build", "cython-debug") if DEBUG else None,
    ),
)
