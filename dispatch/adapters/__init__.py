"""The adapters: where things are kept and how they travel — the event store (the one module
coupled to eventsourcing's persistence), the read-model database, the users' tables, the
command log, parked commands, the vault, photos, the holiday table, the outbox and its
channels, and Kafka (``adapters/kafka/``). The read models themselves are ``dispatch.projections``."""
