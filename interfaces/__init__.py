"""robopost interfaces."""
