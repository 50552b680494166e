"""Importers that turn foreign map files (Open-RMF, OpenStreetMap) into a ``maps.model.Site``."""
