"""The consumer processes of a Kafka deployment — engine, relay, projector, a department's desk,
the watchdog's loop — each a translation from topics to the service layer (entry points)."""
