"""The service layer: the use cases every door shares — command handlers and the application
that runs them, authorization (``access``), the read queries, the write actions, user
management, the watchdog, the notifier, the what-if, replay (``service/replay/``) and the
simulation (``service/simulation/``)."""
