"""The load generator: raw HTTP/1.1 keep-alive on asyncio + uvloop, in its own processes.

Why not an HTTP client library: on a 2-core machine the generator competes with the server
for CPU, so every microsecond it spends per request is taken from the thing being measured.
Here a request is a pre-rendered byte string, a response is parsed by llhttp (httptools, in
C) just far enough to find its status and body, and latencies go into a plain list that is
turned into HDR histograms once the measurement window has closed.

Two ways to apply load:
- closed loop (`rate=None`): N connections, each sends its next request when the previous
  one has been answered (like `wrk -c N` or `ab -c N`);
- open loop (`rate=R`): requests are due at fixed times R per second, shared by the N
  connections; latency is measured from the time a request was *due*, not from when a free
  connection got round to sending it, so a server that stalls cannot hide the stall
  (coordinated omission).

Besides the totals of the measured window, a job records a time series: every
`series_interval_s`, from the start of the warmup to the end of the window, the answers,
errors, latency histogram and generator CPU of that interval. The client only writes down
its counters at each boundary; the histograms are cut from the latency list afterwards.

The modules, in the order a request meets them:
- `job`: the job, its result, the series point, and the typed messages over the pipes;
- `http`: request rendering from workload templates, the response reader;
- `client`: the asyncio engine of one process (callbacks, no future per request);
- `series`: interval marks into points, and the points of several processes merged;
- `pool`: `LoadGenerator`, worker processes spawned once and reused across cells, which
  splits a job between them and merges what they measured.
"""

from pgarena.bench.loadgen.job import LoadJob, LoadResult, Progress, SeriesPoint
from pgarena.bench.loadgen.pool import LoadGenerator

__all__ = ["LoadGenerator", "LoadJob", "LoadResult", "Progress", "SeriesPoint"]
