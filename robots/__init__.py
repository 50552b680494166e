"""robopost robots."""
