"""The operator's read-only web console at ``/admin/console`` (server-rendered, no build step)."""
