"""Figures the reliability tests report (printed at the end of the run by conftest)."""
FIGURES: dict[str, object] = {}


def report(key: str, value) -> None:
    FIGURES[key] = value
