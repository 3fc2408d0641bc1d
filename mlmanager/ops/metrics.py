"""Prometheus metrics: what this process counts, and what the database knows at scrape time.

Requests and predictions are counted in the web process. Under gunicorn several worker
processes count, so `mlmanager web` sets PROMETHEUS_MULTIPROC_DIR (ops.webserver):
prometheus_client then writes every count to a file per process, and the scrape sums the files.

Jobs run on other machines, so job metrics are not counted anywhere: `JobsCollector` reads them
from the Job and Worker tables at each scrape (jobs.selectors), a few aggregate queries whatever
the table size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.conf import settings
from django.db import DatabaseError
from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from mlmanager.jobs.selectors import (
    alive_worker_count,
    finished_job_durations,
    job_counts_by_kind_and_status,
    queued_job_counts,
)

logger = logging.getLogger(__name__)

HTTP_REQUESTS = Counter(
    "mlmanager_http_requests",
    "HTTP requests answered, by method, route (the URL's name) and status code.",
    ["method", "route", "status"],
)
HTTP_REQUEST_DURATION = Histogram(
    "mlmanager_http_request_duration_seconds",
    "Time to answer an HTTP request (until the response is returned, not streamed).",
    ["method", "route"],
    # The defaults stop at 10 s; uploads and batch downloads take longer.
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
PREDICTIONS = Counter(
    "mlmanager_predictions",
    "Rows answered by models, by where the request came from (api, ui).",
    ["source"],
)

# Upper bounds of the job duration histogram, in seconds: from a small dataset's processing
# to a long training.
JOB_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)


def multiprocess_mode() -> bool:
    """Whether this process writes its metrics to files (PROMETHEUS_MULTIPROC_DIR was set when
    prometheus_client was imported). Asked of prometheus_client, which fixed the choice at
    import, rather than read again from the environment."""
    return values.ValueClass is not values.MutexValue


def exposition() -> bytes:
    """The text a scrape returns: the counters (of every web worker in multiprocess mode),
    then the job metrics from the database."""
    if multiprocess_mode():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        counted = generate_latest(registry)
    else:
        counted = generate_latest(REGISTRY)
    return counted + generate_latest(JobsCollector())


class JobsCollector(Collector):
    """Job and worker metrics read from the database at scrape time. Not registered anywhere:
    `exposition` collects it for each scrape, after the counters."""

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "mlmanager_job_metrics_up",
            "1 if the job metrics below could be read from the database, else 0.",
        )
        try:
            metrics = [
                self._jobs(),
                self._queue_depth(),
                self._durations(),
                self._workers_alive(),
            ]
        except DatabaseError:
            # A scrape still answers (the request counters are worth having while the
            # database is down); the gauge above says the job metrics are missing.
            logger.warning("job metrics could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from metrics

    def _jobs(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "mlmanager_jobs", "Jobs by kind and status.", labels=["kind", "status"]
        )
        # Every known pair comes, zero included, so a series never vanishes while it is zero.
        for (kind, status), count in job_counts_by_kind_and_status().items():
            family.add_metric([kind, status], count)
        return family

    def _queue_depth(self) -> GaugeMetricFamily:
        family = GaugeMetricFamily(
            "mlmanager_job_queue_depth", "Jobs waiting in each queue.", labels=["queue"]
        )
        depths = {queue or "unknown": count for queue, count in queued_job_counts().items()}
        for queue in sorted(set(settings.TASK_QUEUES) | set(depths)):
            family.add_metric([queue], depths.get(queue, 0))
        return family

    def _durations(self) -> HistogramMetricFamily:
        """finished_at − started_at of finished jobs that ran, by kind and status."""
        family = HistogramMetricFamily(
            "mlmanager_job_duration_seconds",
            "How long finished jobs ran, by kind and status.",
            labels=["kind", "status"],
        )
        for durations in finished_job_durations(bounds_s=JOB_DURATION_BUCKETS):
            counts = [
                (floatToGoString(bound), count)
                for bound, count in zip(JOB_DURATION_BUCKETS, durations.counts_within, strict=True)
            ]
            counts.append(("+Inf", durations.count))
            family.add_metric(
                [durations.kind, durations.status], counts, sum_value=durations.total_seconds
            )
        return family

    def _workers_alive(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "mlmanager_workers_alive",
            "Workers that have not stopped and heartbeat within MLMANAGER_JOB_STALE_S.",
            value=alive_worker_count(),
        )
