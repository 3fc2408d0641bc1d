"""API v1 of sites and sensors, by resource: `sites` (CRUD, status, production, emergency
stop, members, device keys), `sensors` (CRUD, readings over time, calibration) and alerts,
`readings` (the ingest); `serializers` holds the fields and output shapes they share.

Every id a client sends is fetched through `access_site` / `access_sensor` / `access_alert`
with the site action the operation needs (sites.access): another team's ids, and sites the
caller holds no role on, are not found; a role that does not allow the action is refused (403).
"""
