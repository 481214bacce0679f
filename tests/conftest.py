"""Root test configuration: the markers of the cross-package tests (the packages declare theirs in pyproject.toml)."""

from __future__ import annotations


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "slow: long-running tests (run in CI, deselect with -m 'not slow')")
