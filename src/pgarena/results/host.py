"""The machine's speed through a run and between two runs, from the probe each cell records.

Before each cell the orchestrator times a fixed piece of CPU work (`bench.probe`); the cell
keeps it as `probe_ms`. Within a run, interleaved repeats spread a change of the machine's
speed over every stack alike and the intervals widen with it, so the ratios stay fair; but
the absolute figures are then not comparable with another run's, and a wide interval has a
cause the reader should know. Between two runs (`pgarena compare`), nothing evens it out: a
machine 20% slower looks like a 20% regression of every cell.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass

from pgarena.results.model import Cell

# Above this (the slower quartile of the probes / the faster one - 1), the machine's speed
# moved enough during a run to be worth saying: more than the 5% a verdict needs. The middle
# half, not the extremes: a shared host has slow moments that last a probe and not a cell.
DRIFT_WARNING = 0.15
# Above this (one run's median probe / the other's - 1), two runs were measured on a machine
# running at different speeds, and their absolute figures differ by that much for nothing.
CHANGE_WARNING = 0.10
# Quartiles of fewer probes than this are the extremes themselves.
MIN_PROBES_FOR_DRIFT = 4


@dataclass(frozen=True)
class HostSpeed:
    """The probe's times over a run's cells (CPU milliseconds; lower is a faster machine)."""

    probes: tuple[float, ...]  # sorted

    @property
    def median_ms(self) -> float:
        return statistics.median(self.probes)

    @property
    def quartiles_ms(self) -> tuple[float, float]:
        """The faster and the slower quartile: the middle half of the probes lies between."""
        q1, _, q3 = statistics.quantiles(self.probes, n=4, method="inclusive")
        return q1, q3

    @property
    def drift(self) -> float | None:
        """How much slower the machine was in its slower quartile than in its faster one
        (0.2 = 20%); None with too few probes to tell."""
        if len(self.probes) < MIN_PROBES_FOR_DRIFT:
            return None
        q1, q3 = self.quartiles_ms
        return q3 / q1 - 1

    def describe(self) -> str:
        """One line for a report's metadata."""
        return (
            f"{self.median_ms:.2f} ms median, {self.probes[0]:.2f}-{self.probes[-1]:.2f} ms "
            f"over {len(self.probes)} cells (a fixed piece of CPU work, timed before each cell)"
        )


def host_speed(cells: Iterable[Cell]) -> HostSpeed | None:
    """The probes of `cells`, or None when none was recorded (older files, runs against a
    `--target`'s machine, which the probe cannot see)."""
    probes = sorted(cell.probe_ms for cell in cells if cell.probe_ms)
    return HostSpeed(tuple(probes)) if probes else None


def drift_warning(speed: HostSpeed | None) -> str | None:
    """A sentence when the machine's speed moved during the run, else None."""
    drift = speed.drift if speed is not None else None
    if speed is None or drift is None or drift <= DRIFT_WARNING:
        return None
    q1, q3 = speed.quartiles_ms
    return (
        f"the machine's speed moved {drift:.0%} during the run: a fixed piece of CPU work, "
        f"timed before each cell, took {q1:.2f}-{q3:.2f} ms in the middle half of the cells "
        "(a shared host, a changing clock). The interleaved repeats keep this run's "
        "comparisons fair and its intervals include the change; its absolute figures are not "
        "comparable with another run's."
    )


def change_warning(base: HostSpeed | None, new: HostSpeed | None) -> str | None:
    """A sentence when two runs were measured at different machine speeds, else None."""
    if base is None or new is None:
        return None
    ratio = new.median_ms / base.median_ms
    if abs(ratio - 1) <= CHANGE_WARNING:
        return None
    pace = "slower" if ratio > 1 else "faster"
    return (
        f"the machine ran {pace} in NEW: a fixed piece of CPU work took {ratio:.2f}x as long "
        f"({base.median_ms:.2f} ms in BASE, {new.median_ms:.2f} ms in NEW, medians over "
        "cells), so absolute differences of that size may be the machine's, not the code's"
    )
