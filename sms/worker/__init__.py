"""``trunkline smpp``: the SMPP worker process, split by concern (entry point: main.run_smpp)."""
