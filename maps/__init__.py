"""robopost maps."""
