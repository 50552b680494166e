"""HTTP API benchmarks: ``python -m benchmarks.api.orders`` (order creation at a fixed rate on loopback)."""
