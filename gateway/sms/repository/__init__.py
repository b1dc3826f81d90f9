"""The SMS domain's SQL: one module per path (the send path, its quota counters, opt-outs,
messages, the operator's connections and routes; the SMPP worker's)."""
