"""Writes of the sites app, by sub-domain: `sites` (sites, members, device keys, production,
commands), `sensors` (sensors and calibration), `readings` (the ingest), `alerts` (threshold
alerts), `maintenance` (partitions and retention)."""
