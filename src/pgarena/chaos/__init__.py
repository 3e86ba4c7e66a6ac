"""`pgarena chaos`: break PostgreSQL under a running stack and measure how the service copes.

Each fault (restart, freeze, pool exhaustion, disconnect storm, concurrent writes, and
schemathesis when installed) runs against one stack at a time, on an embedded PostgreSQL of
its own, while a load of HTTP clients records every request: when it started, how long it
took, what status it got. `model.py` turns those records into what the issue's "Done when"
asks (requests by status during and after the fault, the longest request, time to recovery,
leaks) and judges them against bounds read from the service's settings; `faults.py` makes the
faults; `runner.py` runs them stack by stack and writes the result file after every fault, so
a crash keeps what was measured; `report.py` writes the Markdown section per stack.
"""
