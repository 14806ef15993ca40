"""The evaluation: measuring the running system and reporting on it.

`bazaar load` measures latency, throughput and the cache's hit rate. Pure parts (no I/O):
`stats` (percentiles), `workload` (the seeded plan and how answers are judged), `results` (the
summary documents), `table` and `progress` (text). The network parts: `cachewatch` (polls
GET /cache), `loadrun` (the clients of one run) and `run` (clusters, reactor, signals, files).

`bazaar plot` draws the figures and writes docs/evaluation.md: `inputs` (reads what load and
chaos wrote), `plot`, `machine`, `observations` (sentences worded from the numbers), `document`.
"""
