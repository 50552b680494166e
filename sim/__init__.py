"""robopost sim."""
