"""The portal's own Prometheus metrics, served on /metrics to a bearer token or staff.

Request latency is measured in-process. Task outcomes, durations and queue depth are read
from django-q2's tables at scrape time, so they are right whichever process ran the task.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.db.models import Count, F, Sum
from django.db.models.functions import Extract
from django.http import HttpRequest, HttpResponse
from django_q.models import OrmQ, Task
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from orgs.tenancy import use_public_schema

REQUEST_LATENCY = Histogram(
    "flotilla_http_request_duration_seconds",
    "Latency of HTTP requests by method, route and status class.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


class RequestMetricsMiddleware:
    """Observes every request's latency, labelled by URL route (never by raw path)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        REQUEST_LATENCY.labels(request.method or "", route, f"{response.status_code // 100}xx").observe(
            time.perf_counter() - started
        )
        return response


class TaskQueueCollector(Collector):
    """Task counts and durations by outcome, and queue depth, from the task tables."""

    def collect(self) -> Iterator[Metric]:
        use_public_schema()
        outcomes = CounterMetricFamily(
            "flotilla_tasks", "Finished tasks by function and outcome.", labels=["func", "outcome"]
        )
        durations = CounterMetricFamily(
            "flotilla_task_duration_seconds",
            "Total seconds spent in finished tasks by function and outcome.",
            labels=["func", "outcome"],
        )
        rows = (
            Task.objects.values("func", "success")
            .annotate(n=Count("id"), seconds=Sum(Extract(F("stopped") - F("started"), "epoch")))
            .order_by()
        )
        for row in rows:
            labels = [row["func"], "success" if row["success"] else "failure"]
            outcomes.add_metric(labels, row["n"])
            durations.add_metric(labels, float(row["seconds"] or 0))
        yield outcomes
        yield durations
        depth = GaugeMetricFamily("flotilla_task_queue_depth", "Tasks waiting in the queue.")
        depth.add_metric([], OrmQ.objects.count() if not settings.REDIS_URL else 0)
        yield depth


_extra: list[Collector] = []


def register_collector(collector: Collector) -> None:
    """Apps add scrape-time collectors (e.g. clusters by state) from their ready()."""
    _extra.append(collector)


def _scrape_registry() -> Iterable[CollectorRegistry]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TaskQueueCollector())
    for collector in _extra:
        registry.register(collector)
    return (REGISTRY, registry)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition: needs `Authorization: Bearer $FLOTILLA_METRICS_TOKEN` or staff."""
    expected = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    by_token = bool(expected) and hmac.compare_digest(header, f"Bearer {expected}")
    by_staff = bool(
        getattr(request, "user", None) and request.user.is_authenticated and request.user.is_staff
    )
    if not (by_token or by_staff):
        return HttpResponse(
            "metrics need a bearer token or a staff session\n", status=401, content_type="text/plain"
        )
    body = b"".join(generate_latest(registry) for registry in _scrape_registry())
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
