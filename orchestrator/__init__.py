"""robopost orchestrator."""
