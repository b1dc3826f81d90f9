"""The key that encrypts stored secrets in tests (TRUNKLINE_SECRETS_KEYS), in this process and in
the trunkline processes tests start. A test value, never a deployment's."""

TEST_SECRETS_KEYS = "jKAlooJ8gwF297SOIJUCu4AUfNfQadfhSp3Z8rf31RY"
