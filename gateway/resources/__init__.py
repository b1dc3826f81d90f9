"""Communication resources (tenants) and their access keys."""
