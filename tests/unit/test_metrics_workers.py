"""`/metrics` with several workers: the sum of their files, even while one is starting."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.parser import text_string_to_metric_families

from pgarena.service.metrics import MULTIPROC_ENV, render_metrics


def write_counter(path: Path, value: float) -> None:
    """What a worker's `USERS_CREATED.inc(value)` leaves in its file."""
    values = MmapedDict(str(path))
    key = mmap_key("users_created", "users_created_total", [], [], "Users created.")
    values.write_value(key, value, 0.0)
    values.close()


def users_created(text: str) -> float:
    families = {family.name: family for family in text_string_to_metric_families(text)}
    return sum(sample.value for sample in families["users_created"].samples)


def test_workers_counts_add_up_and_a_starting_workers_empty_file_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path))
    write_counter(tmp_path / "counter_101.db", 3)
    write_counter(tmp_path / "counter_102.db", 4)
    # A worker that has created its file and not yet sized it (prometheus/client_python#1199).
    (tmp_path / "counter_103.db").touch()

    body, content_type = render_metrics()

    assert content_type.startswith("text/plain")
    assert users_created(body.decode()) == 7
