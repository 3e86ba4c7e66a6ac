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

# Above this (slowest probe / fastest - 1), the machine's speed moved enough during a run to
# be worth saying: more than the 5% a verdict needs, but a quiet machine's probes stay
# within a few percent.
DRIFT_WARNING = 0.15
# Above this (one run's median probe / the other's - 1), two runs were measured on a machine
# running at different speeds, and their absolute figures differ by that much for nothing.
CHANGE_WARNING = 0.10


@dataclass(frozen=True)
class HostSpeed:
    """The probe's times over a run's cells (CPU milliseconds; lower is a faster machine)."""

    fastest_ms: float
    median_ms: float
    slowest_ms: float
    probes: int

    @property
    def drift(self) -> float:
        """How much slower the machine was at its slowest than at its fastest (0.2 = 20%)."""
        return self.slowest_ms / self.fastest_ms - 1

    def describe(self) -> str:
        """One line for a report's metadata."""
        return (
            f"{self.median_ms:.2f} ms median, {self.fastest_ms:.2f}-{self.slowest_ms:.2f} ms "
            f"over {self.probes} cells (a fixed piece of CPU work, timed before each cell)"
        )


def host_speed(cells: Iterable[Cell]) -> HostSpeed | None:
    """The probes' spread over `cells`, or None when none was recorded (older files, runs
    against a `--target`'s machine, which the probe cannot see)."""
    probes = [cell.probe_ms for cell in cells if cell.probe_ms]
    if not probes:
        return None
    return HostSpeed(min(probes), statistics.median(probes), max(probes), len(probes))


def drift_warning(speed: HostSpeed | None) -> str | None:
    """A sentence when the machine's speed moved during the run, else None."""
    if speed is None or speed.drift <= DRIFT_WARNING:
        return None
    return (
        f"the machine's speed moved {speed.drift:.0%} during the run: a fixed piece of CPU "
        f"work took {speed.fastest_ms:.2f}-{speed.slowest_ms:.2f} ms between cells (a shared "
        "host, a changing clock). The interleaved repeats keep this run's comparisons fair and "
        "its intervals include the change; its absolute figures are not comparable with "
        "another run's."
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
