"""CPU accounting of a measured window: what counts as busy, as "other", and when to warn."""

from __future__ import annotations

from collections import namedtuple

import pytest

from pgarena.bench.resources import (
    OTHER_CPU_WARNING_SHARE,
    WindowUsage,
    busy_cpu_seconds,
    cpu_shares,
    other_cpu_seconds,
    other_cpu_warning,
)

LinuxTimes = namedtuple(
    "LinuxTimes",
    "user nice system idle iowait irq softirq steal guest guest_nice",
)


def _usage(machine: float, server: float | None, postgres: float | None) -> WindowUsage:
    return WindowUsage(
        wall_s=10.0,
        server_cpu_s=server,
        server_rss_peak_bytes=None,
        server_rss_mean_bytes=None,
        postgres_cpu_s=postgres,
        machine_busy_cpu_s=machine,
        db_connections_max=None,
        db_connections_active_max=None,
    )


def test_busy_time_leaves_out_idle_io_wait_steal_and_guest_counted_twice() -> None:
    times = LinuxTimes(
        user=10, nice=1, system=3, idle=50, iowait=4, irq=0.5, softirq=0.5, steal=7,
        guest=2, guest_nice=1,
    )  # fmt: skip
    # guest is already inside user, guest_nice inside nice; steal ran another machine.
    assert busy_cpu_seconds(times) == pytest.approx(10 + 1 + 3 + 0.5 + 0.5)


def test_other_cpu_is_what_the_known_parts_do_not_explain() -> None:
    assert other_cpu_seconds(10.0, 4.0, 3.0, 1.5) == pytest.approx(1.5)
    # Parts read in clock ticks a moment apart can overshoot the machine a little.
    assert other_cpu_seconds(8.0, 4.0, 3.0, 1.5) == 0.0
    # A part that is not measured (remote PostgreSQL) counts as other.
    assert other_cpu_seconds(10.0, 4.0, None, 1.5) == pytest.approx(4.5)


def test_warning_only_above_a_quarter_core_on_average() -> None:
    assert OTHER_CPU_WARNING_SHARE == 0.25
    assert other_cpu_warning(2.5, wall_s=10.0) is None  # exactly a quarter core
    assert other_cpu_warning(None, wall_s=10.0) is None
    assert other_cpu_warning(1.0, wall_s=0.0) is None
    message = other_cpu_warning(6.2, wall_s=10.0)
    assert message is not None and "\n" not in message
    assert message.startswith("other programs kept 0.62 CPU cores busy")


def test_window_learns_other_cpu_once_the_generators_is_known() -> None:
    usage = _usage(machine=12.0, server=5.0, postgres=3.0)
    assert usage.other_cpu_s is None and usage.generator_cpu_s is None
    known = usage.with_generator_cpu(2.0)
    assert (known.generator_cpu_s, known.other_cpu_s) == (2.0, pytest.approx(2.0))
    assert usage.other_cpu_s is None  # a copy: the original is unchanged


def test_cpu_shares_other_agrees_with_other_cpu_seconds() -> None:
    usage = _usage(machine=12.0, server=5.0, postgres=3.0).with_generator_cpu(2.0)
    shares = cpu_shares(usage, 2.0, cpus=2)
    assert shares == pytest.approx(
        {"server": 0.25, "postgres": 0.15, "generator": 0.1, "other": 0.1}
    )
    assert shares["other"] == pytest.approx(usage.other_cpu_s / (usage.wall_s * 2))
