"""Phone numbers: carriers and inventory (operator side) and the ACS Phone Numbers API 2025-06-01."""
