"""SQL of the numbers domain, by concern: the catalogue of available numbers (``catalogue``), holds
by searches and reservations (``holds``), purchased numbers and their release (``purchased``),
and offset paging (``paging``). Services hold the rules and call these; nothing else builds
statements on the numbers tables outside ``inventory`` (the operator's listing), ``importer``
(COPY) and ``operations`` (the operation runner).
"""
