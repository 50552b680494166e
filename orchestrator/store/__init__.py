"""robopost orchestrator.store."""
