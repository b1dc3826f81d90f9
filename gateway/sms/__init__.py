"""SMS: the ACS SMS API (send, opt-outs, delivery reports), the message lifecycle, and the SQL of the
send path and of the SMPP worker (sms/worker/)."""
