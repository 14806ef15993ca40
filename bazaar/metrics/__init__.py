"""Each process's Prometheus metrics (docs/api.md, "Metrics"), served at GET /metrics.

The only package that imports prometheus_client. What the processes already count (the
cache's hits, the leader's match points, the trades' outcomes) stays plain numbers on their
own objects, read here when Prometheus scrapes: collectors cost the hot paths nothing. What
only a histogram can tell (a request's latency, a batch's size) is fed by a hook the object
calls, whose labels' children are looked up once and kept.
"""
