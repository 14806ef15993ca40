"""A process's group commit (reactor/group_commit.py): how many writes share one fsync, and
how long a batch takes on the writer thread."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from bazaar.reactor.group_commit import GroupCommitter

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)  # 2048: the committer's max_batch
WRITE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


def observe_group_commit(registry: CollectorRegistry, committer: GroupCommitter) -> None:
    sizes = Histogram(
        "bazaar_group_commit_batch_size", "Writes committed together by one batch (one transaction, one fsync).",
        buckets=BATCH_BUCKETS, registry=registry,
    )
    seconds = Histogram(
        "bazaar_group_commit_duration_seconds",
        "Seconds from a batch's hand-off to the writer thread to its result back in the reactor.",
        buckets=WRITE_BUCKETS, registry=registry,
    )

    def batch(size: int, duration: float) -> None:
        sizes.observe(size)
        seconds.observe(duration)

    committer.on_batch = batch
