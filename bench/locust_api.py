"""Locust user for bench/api_latency.py: an API client listing members with its token."""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task


class ApiClient(FastHttpUser):
    """Lists the org's members, page after page of the same list."""

    wait_time = constant(float(os.environ.get("BENCH_WAIT", "0")))

    @task
    def list_members(self) -> None:
        self.client.get(
            "/api/v1/orgs/members/",
            headers={"Authorization": f"Bearer {os.environ['BENCH_TOKEN']}"},
            name="GET /api/v1/orgs/members/",
        )
