"""The domain: the rules of a ticket's life, with no database, broker or door in sight — the
lifecycle fold, the command model, the SLA, calendar and ladder policies, reference data,
identities, positions, case numbers' form, errors and their Chinese sentences."""
