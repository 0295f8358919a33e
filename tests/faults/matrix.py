"""The fault matrix of issue 13: for each fault, what its test checks. The tests of ``tests/faults`` register here
(``@fault``), their items carry their row (``conftest.py``), and ``MatrixReport`` prints the matrix, with each
test's result, at the end of the run:

    fault | what was checked | result

Faults the issue names that no test here injects yet are listed too (``NOT_COVERED``), so the table never
suggests more than was run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Fault:
    fault: str
    checked: str


# The faults, in its order.
FAULTS = (
    "kill -9 a pull run mid-load, then rerun",
    "restart PostgreSQL mid-sync (app DB and warehouse)",
    "kill the daemon mid-push batch",
    "kill the API after a webhook is acknowledged, before its fast path ran",
    "access token expires mid-pagination",
    "four processes refreshing one connection at once",
    "provider slower than the client timeout on a write",
)
MATRIX: dict[str, Fault] = {}  # test function name -> its fault
NOT_COVERED: tuple[Fault, ...] = ()


def fault(name: str, checked: str) -> Callable[[F], F]:
    """Register the decorated test as the matrix's row for ``name``."""

    assert name in FAULTS, f"not a fault of the issue: {name!r}"

    def register(test: F) -> F:
        MATRIX[test.__name__] = Fault(name, checked)
        return test

    return register


ROW_PROPERTY = "fault_matrix_row"  # a test item's user property: (fault, checked); reports carry it across xdist


def table(results: dict[str, tuple[str, str, str]]) -> list[str]:
    """The matrix as text lines: each test that reported (test name -> fault, checked, result), and each fault of
    the issue no reported test covers (``not run``)."""
    rows = list(results.values())
    rows += [(name, "", "not run") for name in FAULTS if name not in {row[0] for row in rows}]
    rows += [(row.fault, row.checked, "not covered") for row in NOT_COVERED]
    rows.sort(key=lambda row: FAULTS.index(row[0]))
    header = ("fault", "what was checked", "result")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

    def line(cells: tuple[str, str, str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return [line(header), "-+-".join("-" * width for width in widths), *(line(r) for r in rows)]


class MatrixReport:
    """The plugin that prints the matrix (registered by tests/conftest.py, so that under pytest-xdist the
    controller, which collects nothing, prints it from the reports its workers send)."""

    def __init__(self) -> None:
        self.results: dict[str, tuple[str, str, str]] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        row = dict(report.user_properties).get(ROW_PROPERTY)
        if row is None:
            return
        name = report.nodeid.split("::")[-1].split("[")[0]
        fault_name, checked = row
        if report.when == "call" or (report.when == "setup" and not report.passed):
            if report.skipped:
                reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else "skipped"
                outcome = f"skipped ({str(reason).removeprefix('Skipped: ')})"
            else:
                outcome = report.outcome
            self.results[name] = (fault_name, checked, outcome)
        elif report.when == "teardown" and report.failed:
            self.results[name] = (fault_name, checked, "failed (teardown)")

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if not self.results:
            return
        terminalreporter.section("fault matrix (issue 13)")
        for line in table(self.results):
            terminalreporter.write_line(line)
