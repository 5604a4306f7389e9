"""Benchmark results and the table they are printed in.

Every figure is printed beside a reference measured in the same run, as a ratio: these
machines are noisy, and a ratio survives noise that an absolute figure does not.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

__all__ = ["Log", "Result", "format_duration", "format_table"]

#: Where a benchmark writes its progress lines.
Log = Callable[[str], None]


@attrs.frozen
class Result:
    """One benchmark: the subject's figure beside its reference's, and the target ratio.

    :param name: what was measured, e.g. ``"dispatch, 1 impl"``.
    :param subject: the subject's figure in seconds (per call or per query).
    :param reference: the reference's figure in seconds, measured in the same run.
    :param statistic: which statistic the figures are (``"median"``, ``"p95"``, ...).
    :param target: the largest acceptable ``subject / reference``; ``None`` if the issue
        sets no target (the figure is reported only).
    :param note: a short remark printed under the table (row counts, loop overhead...).
    """

    name: str
    subject: float
    reference: float
    statistic: str = "median"
    target: float | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.subject / self.reference if self.reference > 0 else float("inf")

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "reported"
        return "within target" if self.ratio <= self.target else "OVER TARGET"


def format_duration(seconds: float) -> str:
    """``seconds`` with a unit that keeps three or four significant digits."""
    if seconds < 1e-6:
        return f"{seconds * 1e9:.1f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds:.2f} s"


def _row(result: Result) -> list[str]:
    target = "—" if result.target is None else f"≤ {result.target:g}x"
    return [
        result.name,
        result.statistic,
        format_duration(result.subject),
        format_duration(result.reference),
        f"{result.ratio:.3f}x",
        target,
        result.verdict,
    ]


HEADER = ["benchmark", "stat", "subject", "reference", "ratio", "target", "verdict"]
NUMERIC = {2, 3, 4}


def format_table(results: Sequence[Result]) -> str:
    """The results as a plain-text table, with the notes listed below it."""
    rows = [HEADER, *(_row(r) for r in results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]

    def line(cells: list[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in NUMERIC else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(rows[0]), line(["-" * w for w in widths])]
    out += [line(row) for row in rows[1:]]
    notes = [f"  - {r.name}: {r.note}" for r in results if r.note]
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)
