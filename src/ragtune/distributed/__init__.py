"""Scale-out execution on Ray (extra `ragtune[ray]`): ingestion (ray_ingest) and comparison shards (ray_compare).

Nothing here imports ray at import time; `ray_session` imports it when a command asks for `--ray`.
"""
