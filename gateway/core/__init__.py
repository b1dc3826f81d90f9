"""Plumbing shared by every domain: settings, database, errors, auth, logging, metrics, TLS."""
