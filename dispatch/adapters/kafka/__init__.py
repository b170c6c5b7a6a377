"""Kafka plumbing: topic names, wire helpers, clients (see docs/wire-format.md).
The consumers themselves live in ``consumers/``."""

from dispatch.adapters.eventstore import FencedTracking, FencedTrackings, install_fence
from dispatch.adapters.kafka.clients import FETCH_MAX_WAIT_MS, DeadLetterSender, make_consumer, make_producer
from dispatch.adapters.kafka.topics import DEFAULT_BOOTSTRAP, DEFAULT_PREFIX, KafkaSettings, Topics, ensure_topics
from dispatch.adapters.kafka.wire import DeadLetter, intake_key, whistle_from_json, whistle_messages

__all__ = [
    "DEFAULT_BOOTSTRAP",
    "DEFAULT_PREFIX",
    "FETCH_MAX_WAIT_MS",
    "DeadLetter",
    "DeadLetterSender",
    "FencedTracking",
    "FencedTrackings",
    "KafkaSettings",
    "Topics",
    "ensure_topics",
    "install_fence",
    "intake_key",
    "make_consumer",
    "make_producer",
    "whistle_from_json",
    "whistle_messages",
]
