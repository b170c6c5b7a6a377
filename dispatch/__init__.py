"""dispatch: an event-sourced work-order dispatch engine for urban grid management."""
