"""Calls: SIP trunks and routes of the operator, and each tenant's SIP routing (SipRouting API)."""
