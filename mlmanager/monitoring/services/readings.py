"""What monitoring does when a site's readings arrive: the one call the ingest makes
(`sites.services.readings`), in its transaction.

The rules watching the sensors are evaluated (an alert commits with the readings that broke
the rule, so it is in the database as soon as the ingest answers), and the models attached
to the sensors' site are claimed to predict once the readings commit. A failure here (a bug,
a rule whose series can no longer be read) is logged and never loses the readings: it runs in
a savepoint the ingest survives.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime

from django.db import transaction

from mlmanager.monitoring.services import attachments, evaluation

logger = logging.getLogger(__name__)


def readings_received(
    *,
    team_id: int,
    values: Mapping[int, Sequence[tuple[datetime, float]]],
    previous: Mapping[int, tuple[datetime, float]] | None = None,
) -> None:
    """`values`: sensor id → its new (timestamp, calibrated value), in time order, newer than
    the sensor's previous latest; `previous`: that latest (timestamp, calibrated value), for
    the sensors that had one."""
    if not values:
        return
    try:
        with transaction.atomic():
            evaluation.evaluate_sensor_values(team_id, values, previous)
    except Exception:
        logger.exception("alert rules of team %s could not be evaluated at ingest", team_id)
    try:
        with transaction.atomic():
            attachments.attachments_on_readings(team_id=team_id, sensor_ids=list(values))
    except Exception:
        logger.exception("attached models of team %s could not be claimed", team_id)
