"""SMS: the ACS SMS API (send, opt-outs, delivery reports) and the database side of the SMPP process."""
