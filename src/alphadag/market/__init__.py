"""Pure market-data layer: ticker canonicalisation, the XNYS calendar, the bar schema, validation
rules, data sources and partition storage. Nothing here imports dagster; the ``defs`` layer wraps it.
"""
