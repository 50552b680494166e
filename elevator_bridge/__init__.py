"""robopost elevator_bridge."""
