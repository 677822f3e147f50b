"""Test configuration: bounded hypothesis profiles.

HYPOTHESIS_PROFILE=ci (default, what .ci/run uses), dev (fewer examples) or
soak (many more; `make soak`).
"""
import os

from hypothesis import HealthCheck, settings

# `make test` runs pytest with -P so the installed wheel, not the source tree, is imported;
# the processes the tests start (the CLI, dask workers) must do the same.
if os.environ.get("HFTCORE_TEST_INSTALLED"):
    os.environ["PYTHONSAFEPATH"] = "1"

settings.register_profile("ci", max_examples=150, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=30, deadline=None)
settings.register_profile("soak", max_examples=5000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_terminal_summary(terminalreporter):
    from figures import FIGURES
    if FIGURES:
        terminalreporter.section("reliability figures")
        for key, value in FIGURES.items():
            terminalreporter.write_line(f"{key}: {value}")
