"""Network Traversal API (2022-03-01-preview): time-limited TURN relay credentials."""
