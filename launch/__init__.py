"""robopost launch."""
