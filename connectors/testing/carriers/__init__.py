"""Fakes of the carriers (Chronopost, DHL Express, UPS) for tests and the demo."""
