"""The ledger's batched sends: the Faust code they replace is pinned, partitions are Faust's."""

from __future__ import annotations

import hashlib
import inspect
import random

import faust
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.producer import AIOKafkaProducer
from faust.transport.drivers.aiokafka import Producer

from streams.worker.fastpath import FAUST_VERSION, BatchSender, key_partition

# The Faust and aiokafka code streams/worker/fastpath.py replaces or relies on, as read for
# faust-streaming 0.15.3 and aiokafka 0.14.0.
READ = {
    Producer.send: "0b5bd08f52e5e2a9",
    Producer._ensure_producer: "5592a4bbdf251325",
    AIOKafkaProducer.create_batch: "c4efda4bb7a09741",
    AIOKafkaProducer.send_batch: "bf42b0f0c5c0646d",
    DefaultPartitioner.__call__: "4911320054e76343",
}


def _digest(method: object) -> str:
    return hashlib.sha256(inspect.getsource(method).encode()).hexdigest()[:16]  # type: ignore[arg-type]


def test_the_faust_code_replaced_is_the_code_that_was_read() -> None:
    """Given the installed Faust and aiokafka, when the version and the source of the methods
    the batched sends replace or call are compared with those they were written against,
    then they are the same; an upgrade fails here until streams/worker/fastpath.py is
    checked against it."""
    assert faust.__version__ == FAUST_VERSION
    for method, digest in READ.items():
        assert _digest(method) == digest, method.__qualname__


def test_a_keyed_record_goes_to_the_partition_faust_s_producer_picks() -> None:
    """Given random SKU keys and several partition counts, when the batched sender picks a
    partition for each key (twice, the second time from its hash cache), then it is the
    partition of aiokafka's default partitioner (the Java client's murmur2), so a compacted
    topic keeps each key in one partition whichever path wrote it."""
    rng = random.Random(11)
    sender = BatchSender(lambda: None)
    partitioner = DefaultPartitioner()
    keys = [f"sku-{rng.randrange(10**9)}".encode() for _ in range(2000)]
    keys += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(500)]
    for count in (1, 3, 8, 12):
        parts = list(range(count))
        for _ in range(2):
            for key in keys:
                assert key_partition(sender._hash(key), count) == partitioner(key, parts, parts)
