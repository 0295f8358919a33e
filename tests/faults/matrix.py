"""The fault matrix of issue 13: for each fault, what its test checks. The tests of ``tests/faults`` register here
(``@fault``) and ``conftest.py`` prints the matrix, with each test's result, at the end of the run:

    fault | what was checked | result

Faults the issue names that no test here injects yet are listed too (``NOT_COVERED``), so the table never
suggests more than was run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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


def table(results: dict[str, str]) -> list[str]:
    """The matrix as text lines, each registered test with its result (``not run`` when it was not)."""
    rows = [(row.fault, row.checked, results.get(test, "not run")) for test, row in MATRIX.items()]
    rows += [(row.fault, row.checked, "not covered") for row in NOT_COVERED]
    rows.sort(key=lambda row: FAULTS.index(row[0]))
    header = ("fault", "what was checked", "result")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]

    def line(cells: tuple[str, str, str]) -> str:
        return " | ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()

    return [line(header), "-+-".join("-" * width for width in widths), *(line(r) for r in rows)]
