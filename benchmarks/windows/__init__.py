"""Delivery-window recommendation benchmark: ``.venv/bin/python -m benchmarks.windows.recommend``."""
