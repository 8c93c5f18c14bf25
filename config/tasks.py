"""django-q2 wiring: every task is enqueued with an org schema and runs inside it.

`enqueue("clusters.tasks.reconcile_cluster", schema_name=org.schema_name, cluster_id=1)`
queues `run_in_schema`, which re-enters the schema in the worker and calls the task.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from django.db import transaction
from django_q.tasks import async_task
from django_tenants.utils import get_public_schema_name, schema_context

from orgs.models import Organization
from orgs.tenancy import use_public_schema


class MissingOrg(RuntimeError):
    """A task was enqueued or run without an org schema."""


def _check_schema(schema_name: str | None) -> str:
    if not schema_name or schema_name == get_public_schema_name():
        raise MissingOrg("tasks run inside an organisation's schema; none was given")
    return schema_name


def _resolve(path: str) -> Callable[..., Any]:
    module_name, _, attr = path.rpartition(".")
    if not module_name:
        raise ValueError(f"task path {path!r} is not module.function")
    func = getattr(importlib.import_module(module_name), attr)
    if not callable(func):
        raise ValueError(f"{path!r} is not callable")
    return func  # type: ignore[no-any-return]


def enqueue(path: str, *, schema_name: str, task_name: str | None = None, **kwargs: Any) -> None:
    """Queue `path(**kwargs)` to run in `schema_name`, after the current transaction commits."""
    _check_schema(schema_name)
    _resolve(path)  # fail now, in the caller, for a typo
    for key, value in kwargs.items():
        if hasattr(value, "_meta"):
            raise TypeError(f"task argument {key!r} is a model instance; pass its id")

    def send() -> None:
        async_task(
            "config.tasks.run_in_schema",
            path,
            schema_name,
            kwargs,
            task_name=task_name or f"{schema_name}:{path.rpartition('.')[2]}",
            group=schema_name,
        )

    transaction.on_commit(send)


def run_in_schema(path: str, schema_name: str, kwargs: dict[str, Any]) -> Any:
    """The worker side: check the org exists and is active, enter its schema, run the task."""
    _check_schema(schema_name)
    use_public_schema()
    org = Organization.objects.filter(schema_name=schema_name).first()
    if org is None:
        raise MissingOrg(f"no organisation has schema {schema_name!r}")
    func = _resolve(path)
    with schema_context(schema_name):
        return func(**kwargs)
