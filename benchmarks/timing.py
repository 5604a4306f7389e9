"""Interleaved timing: the subject and its reference take turns, so drift hits both.

A machine that slows down half-way through (another process, thermal throttling, a cache
flushed) would bias a run that times the reference first and the subject after. Here every
round times each candidate once, in an order that alternates from round to round.
"""

from __future__ import annotations

import math
import statistics
import time
import timeit
from collections.abc import Callable, Mapping, Sequence

__all__ = ["interleaved_calls", "interleaved_timeit", "median", "percentile"]


def _round_order(names: Sequence[str], round_index: int) -> list[str]:
    """``names`` forwards on even rounds, backwards on odd ones."""
    return list(names) if round_index % 2 == 0 else list(reversed(names))


def interleaved_timeit(
    timers: Mapping[str, timeit.Timer], *, number: int, repeat: int
) -> dict[str, list[float]]:
    """Seconds per call of each timer, one figure per round of ``number`` calls.

    Each of the ``repeat`` rounds runs every timer once (``number`` loops), alternating the
    order; one untimed warm-up round comes first.
    """
    names = list(timers)
    for name in names:
        timers[name].timeit(max(1, number // 10))
    per_call: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(repeat):
        for name in _round_order(names, round_index):
            per_call[name].append(timers[name].timeit(number) / number)
    return per_call


def interleaved_calls(
    calls: Mapping[str, Callable[[], object]], *, samples: int, warmup: int
) -> dict[str, list[float]]:
    """Seconds taken by each call of each callable, ``samples`` times each, interleaved.

    For operations long enough (tens of microseconds and up) to time one by one, so that
    the distribution (median, p95) is visible rather than only a mean.
    """
    names = list(calls)
    for _ in range(warmup):
        for name in names:
            calls[name]()
    taken: dict[str, list[float]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for sample in range(samples):
        for name in _round_order(names, sample):
            call = calls[name]
            start = clock()
            call()
            taken[name].append((clock() - start) / 1e9)
    return taken


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile: the smallest value at or above ``fraction`` of them."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]
