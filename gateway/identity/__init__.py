"""ACS Identity API (2023-10-01): identities, access tokens, revocation, JWKS."""
