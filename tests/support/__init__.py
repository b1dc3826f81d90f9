"""Helpers shared by the test suite: ACS request signing and small API clients."""
