"""SQL of the numbers domain, by concern: the predicates on inventory (``filters``), the catalogue
of available numbers (``catalogue``), holds by searches and reservations (``holds``), purchased
numbers and their release (``purchased``), the operator's listing and carriers (``inventory``),
imports (``imports``: COPY and upserts), long-running operations (``operations``) and offset
paging (``paging``). Services hold the rules and call these; nothing else in the domain builds
statements (services still add, flush and delete ORM objects through the session).
"""
