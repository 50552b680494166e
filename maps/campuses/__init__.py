"""Sample campuses, built in code and saved in robopost map format."""
