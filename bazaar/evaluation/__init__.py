"""The evaluation: `bazaar load` measures latency, throughput and the cache's hit rate.

Pure parts (no I/O): `stats` (percentiles), `workload` (the seeded plan and how answers are
judged), `results` (the summary documents), `table` and `progress` (text). The network parts:
`cachewatch` (polls GET /cache), `loadrun` (the clients of one run) and `run` (clusters,
reactor, signals, files).
"""
