"""`pgarena locust`: pgarena's workloads on Locust, for load from more than one machine.

pgarena's own generator (`bench/loadgen`) is fast but lives on one machine. Locust is the
engine people already run for distributed load: a master that aggregates and workers that
send requests, on as many machines as needed. This package translates, it does not
reimplement: a pgarena workload becomes a Locust `FastHttpUser` class, Locust runs it, and
Locust's own statistics become a pgarena result file that `report` and `compare` read.

Locust patches the standard library for gevent when it is imported, so it never runs in the
`pgarena` process itself. The modules, by the process they run in:
- `cli` and `run` (the `pgarena locust` process): the plan, the database and servers, one
  master subprocess and N local worker subprocesses, Locust's statistics into `Cell`s;
- `master` (`python -m pgarena.bench.locust.master`): Locust's `MasterRunner`, driven cell
  by cell through JSON lines on its stdin and stdout;
- `worker` (`python -m pgarena.bench.locust.worker`): Locust's `WorkerRunner`, on this
  machine or on another (`pgarena locust --worker --master-host ...`);
- `users`: the workloads as `FastHttpUser` classes, imported by master and workers alike;
- `protocol`: what master and workers agree on (no Locust import: tested in-process).
"""
