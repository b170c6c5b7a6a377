"""Event-sourced aggregates."""

from dispatch.aggregates.ticket import FIRST_CONTACT_MODES, SATISFACTION, STATUSES, TERMINAL, Ticket, ticket_id_for

__all__ = ["FIRST_CONTACT_MODES", "SATISFACTION", "STATUSES", "TERMINAL", "Ticket", "ticket_id_for"]
