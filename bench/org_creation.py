"""How long creating an organisation (schema + tables) takes, from the 1st to the 200th.

Run: .venv/bin/python bench/org_creation.py [N]   (default 200; a scratch database is used)
Target (issue 2): under 2 s per org at 200 orgs.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.benchdb import bench_database


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    with bench_database("flotilla_bench_orgs") as url:
        os.environ["FLOTILLA_DATABASE_URL"] = url
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
        import django

        django.setup()
        from django.core.management import call_command
        from django.db import connections

        from orgs.choices import ActorSource
        from orgs.models import User
        from orgs.services.organizations import create_organization

        call_command("prepare_database", verbosity=0)
        owner = User.objects.create_user(email="bench@example.test", password="x" * 20)
        timings: list[float] = []
        for n in range(1, count + 1):
            started = time.perf_counter()
            create_organization(
                user=owner, name=f"Bench {n}", slug=f"bench-{n}", ip=None, source=ActorSource.SYSTEM
            )
            timings.append(time.perf_counter() - started)
        connections.close_all()

    print(f"Organisation creation (schema cloned from the template), {count} orgs")
    print(f"{'orgs so far':>12} {'this org (s)':>13} {'median of last 10 (s)':>22}")
    for mark in sorted({1, 10, 50, 100, 150, 200, count} & set(range(1, count + 1))):
        window = timings[max(0, mark - 10) : mark]
        print(f"{mark:>12} {timings[mark - 1]:>13.3f} {statistics.median(window):>22.3f}")
    print(f"mean {statistics.mean(timings):.3f} s, max {max(timings):.3f} s, total {sum(timings):.1f} s")
    verdict = "meets" if statistics.median(timings[-10:]) < 2.0 else "misses"
    print(f"target < 2 s per org at {count} orgs: {verdict}")


if __name__ == "__main__":
    main()
