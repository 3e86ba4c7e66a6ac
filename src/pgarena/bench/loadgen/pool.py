"""The worker pool: generator processes started once per run, a job split between them, and
what they measured merged back into one `LoadResult`."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection, wait

from pgarena.bench.loadgen.client import drive
from pgarena.bench.loadgen.job import (
    ERROR_KINDS,
    ExitWorker,
    FromWorker,
    JobDone,
    JobFailed,
    LoadJob,
    LoadResult,
    PhaseChanged,
    ProcessResult,
    Progress,
    RunJob,
    StopJob,
    ToWorker,
)
from pgarena.bench.loadgen.series import merge_series
from pgarena.results.histograms import new_histogram


def split_job(job: LoadJob, parts: int) -> list[LoadJob]:
    """Share one job between `parts` processes: connections, rate and requests divided."""
    parts = max(1, min(parts, job.connections))
    jobs = []
    for index in range(parts):
        connections = job.connections // parts + (1 if index < job.connections % parts else 0)
        requests = None
        if job.requests is not None:
            requests = job.requests // parts + (1 if index < job.requests % parts else 0)
        jobs.append(
            replace(
                job,
                connections=connections,
                requests=requests,
                rate=job.rate / parts if job.rate else None,
                seed=job.seed * 1000 + index,
            )
        )
    return jobs


def merge_results(parts: list[ProcessResult]) -> LoadResult:
    """Add up the results of the processes that shared one job."""
    histogram = new_histogram()
    errors: dict[str, int] = dict.fromkeys(ERROR_KINDS, 0)
    for part in parts:
        if part.histogram:
            histogram.decode_and_add(part.histogram.encode("ascii"))
        for kind, count in part.errors.items():
            errors[kind] = errors.get(kind, 0) + count
    started, series = merge_series([(part.started_monotonic, part.series) for part in parts])
    return LoadResult(
        mode=parts[0].mode,
        duration_s=max(part.duration_s for part in parts),
        requests=sum(part.requests for part in parts),
        ok=sum(part.ok for part in parts),
        errors=errors,
        histogram=histogram,
        warmup_duration_s=max(part.warmup_duration_s for part in parts),
        warmup_requests=sum(part.warmup_requests for part in parts),
        generator_cpu_s=sum(part.generator_cpu_s for part in parts),
        processes=len(parts),
        aborted=any(part.aborted for part in parts),
        started_monotonic=started,
        series=series,
    )


def merge_progress(readings: list[Progress]) -> Progress:
    """One progress line from the latest reading of each process."""
    p99s = [reading.p99_ms for reading in readings if reading.p99_ms is not None]
    return Progress(
        phase=readings[0].phase,
        elapsed_s=max(reading.elapsed_s for reading in readings),
        rps=sum(reading.rps for reading in readings),
        # The worst process's p99 is an upper bound of the merged p99; good enough live.
        p99_ms=max(p99s) if p99s else None,
        ok=sum(reading.ok for reading in readings),
        errors=sum(reading.errors for reading in readings),
    )


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def _worker_main(control: Connection) -> None:
    """A generator process: run jobs sent over `control` until told to exit."""
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)

    def send(message: FromWorker) -> None:
        control.send(message)

    try:
        while True:
            message: ToWorker = control.recv()
            if isinstance(message, ExitWorker):
                return
            if isinstance(message, StopJob):  # meant for a job that ended meanwhile
                continue
            stop_event = asyncio.Event()

            def on_control(event: asyncio.Event = stop_event) -> None:
                # Only StopJob can arrive while a job runs. The loop made the descriptor
                # non-blocking; a whole message is there, but recv wants blocking reads.
                os.set_blocking(control.fileno(), True)
                with contextlib.suppress(EOFError, OSError):
                    control.recv()
                os.set_blocking(control.fileno(), False)
                event.set()

            loop.add_reader(control.fileno(), on_control)
            try:
                result = loop.run_until_complete(drive(message.job, send, stop_event))
            except Exception as error:  # reported to the parent, which records the cell
                send(JobFailed(f"{type(error).__name__}: {error}"))
                continue
            finally:
                loop.remove_reader(control.fileno())
                os.set_blocking(control.fileno(), True)
            send(JobDone(result))
    except (EOFError, KeyboardInterrupt):
        return
    finally:
        loop.close()


class LoadGenerator:
    """Generator worker processes, started once and reused for every cell of a run.

    The parent process only orchestrates: it never sends a request itself.
    """

    def __init__(self, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self._context = multiprocessing.get_context("spawn")
        self._workers = [self._spawn() for _ in range(processes)]

    def _spawn(self) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_worker_main, args=(child_end,), name="pgarena-loadgen", daemon=True
        )
        process.start()
        child_end.close()
        return process, parent_end

    def _replace_dead_workers(self) -> None:
        """A worker that died (killed, crashed) is replaced, so one bad cell stays one."""
        for index, (process, control) in enumerate(self._workers):
            if not process.is_alive():
                control.close()
                self._workers[index] = self._spawn()

    @property
    def pids(self) -> list[int]:
        """Process ids of the generator processes (for resource accounting)."""
        return [process.pid for process, _ in self._workers if process.pid is not None]

    def run(
        self,
        job: LoadJob,
        on_progress: Callable[[Progress], None] | None = None,
        on_phase: Callable[[str], None] | None = None,
        should_abort: Callable[[], bool] | None = None,
    ) -> LoadResult:
        """Run `job` split across the worker processes and merge what they measured.

        `on_phase("measuring"|"measured")` is called when every process has entered/left
        the measured window (the runner snapshots resources there). `should_abort` is polled
        a few times a second; when it returns True the processes stop early.
        """
        self._replace_dead_workers()
        jobs = split_job(job, len(self._workers))
        workers = self._workers[: len(jobs)]
        try:
            for (_, control), part in zip(workers, jobs, strict=True):
                control.send(RunJob(part))
        except OSError as error:
            raise RuntimeError(f"load generator process unreachable: {error}") from None
        pending = {control: index for index, (_, control) in enumerate(workers)}
        results: dict[int, ProcessResult] = {}
        failures: list[str] = []
        phases: dict[str, int] = {}
        latest: dict[int, Progress] = {}
        aborted = False
        while pending:
            ready = wait(list(pending), timeout=0.25)
            if should_abort is not None and not aborted and should_abort():
                aborted = True
                for control in pending:
                    with contextlib.suppress(OSError):
                        control.send(StopJob())
            for control in ready:
                index = pending[control]
                try:
                    message: FromWorker = control.recv()  # type: ignore[union-attr]
                except (EOFError, OSError):
                    failures.append("load generator process died")
                    del pending[control]
                    continue
                match message:
                    case JobDone(result):
                        results[index] = result
                        del pending[control]
                    case JobFailed(reason):
                        failures.append(reason)
                        del pending[control]
                    case PhaseChanged(phase):
                        phases[phase] = phases.get(phase, 0) + 1
                        if phases[phase] == len(workers) and on_phase is not None:
                            on_phase(phase)
                    case Progress():
                        latest[index] = message
                        if on_progress is not None and len(latest) == len(workers):
                            on_progress(merge_progress(list(latest.values())))
                            latest.clear()
        if failures:
            raise RuntimeError(failures[0])
        merged = merge_results([results[index] for index in sorted(results)])
        merged.aborted = merged.aborted or aborted
        return merged

    def close(self) -> None:
        """Ask the processes to exit; kill any that do not."""
        for process, control in self._workers:
            with contextlib.suppress(OSError, BrokenPipeError):
                control.send(ExitWorker())
            process.join(timeout=2)
            if process.is_alive():
                process.kill()
                process.join(timeout=2)
            control.close()
        self._workers = []

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
