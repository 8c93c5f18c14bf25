"""The options and arguments of `flotilla apps ...` (what each flag means, in one place)."""

from __future__ import annotations

from typing import Annotated

import typer

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The app's name.")]
ClusterOption = Annotated[
    str | None, typer.Option("--cluster", "-c", metavar="CLUSTER", help="The cluster's name.")
]
NamespaceOption = Annotated[
    str | None, typer.Option("--namespace", "-n", metavar="NS", help="The Kubernetes namespace.")
]
ImageOption = Annotated[
    str | None,
    typer.Option("--image", help="The container image, e.g. nginx:1.27 or ghcr.io/acme/web@sha256:..."),
]
ReplicasOption = Annotated[
    int | None, typer.Option("--replicas", min=0, max=1000, help="How many pods to run.")
]
PortOption = Annotated[
    list[str] | None,
    typer.Option(
        "--port",
        "-p",
        metavar="[NAME=]PORT[/PROTO]",
        help="A container port (repeatable): 80, 53/udp, http=8080.",
    ),
]
EnvOption = Annotated[
    list[str] | None,
    typer.Option("--env", "-e", metavar="KEY=VALUE", help="An environment variable (repeatable)."),
]
SecretOption = Annotated[
    list[str] | None,
    typer.Option(
        "--secret",
        metavar="KEY=VALUE",
        help="A secret environment variable (repeatable), kept in a Kubernetes Secret; never shown back.",
    ),
]
SecretFileOption = Annotated[
    list[str] | None,
    typer.Option(
        "--secret-from-file",
        metavar="KEY=PATH",
        help="A secret variable read from a file (repeatable), so that it is not in the process list.",
    ),
]
CpuOption = Annotated[str | None, typer.Option("--cpu", metavar="QTY", help="CPU request, e.g. 250m or 0.5.")]
MemoryOption = Annotated[
    str | None, typer.Option("--memory", metavar="QTY", help="Memory request, e.g. 256Mi.")
]
CpuLimitOption = Annotated[str | None, typer.Option("--cpu-limit", metavar="QTY", help="CPU limit.")]
MemoryLimitOption = Annotated[str | None, typer.Option("--memory-limit", metavar="QTY", help="Memory limit.")]
HealthOption = Annotated[
    str | None,
    typer.Option(
        "--health",
        metavar="CHECK",
        help="Readiness check: http:/healthz:8080, tcp:5432 or exec:cat /tmp/ready.",
    ),
]
LivenessOption = Annotated[
    str | None, typer.Option("--liveness", metavar="CHECK", help="Liveness check, same syntax as --health.")
]
LabelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--label", "-l", metavar="KEY=VALUE", help="A label of the workload and its pods (repeatable)."
    ),
]
AnnotationOption = Annotated[
    list[str] | None, typer.Option("--annotation", metavar="KEY=VALUE", help="A pod annotation (repeatable).")
]
CommandOption = Annotated[
    str | None,
    typer.Option(
        "--command",
        metavar="COMMAND",
        help="Replace the image's entrypoint: one string, split as a shell would.",
    ),
]
ArgsOption = Annotated[
    str | None,
    typer.Option(
        "--args", metavar="ARGS", help="Replace the image's arguments: one string, split as a shell would."
    ),
]
IdempotencyOption = Annotated[
    str | None,
    typer.Option(
        "--idempotency-key",
        metavar="KEY",
        help="Any unique string (at most 100 characters): retrying with the same key gives the same app.",
    ),
]
DeadlineOption = Annotated[
    str | None,
    typer.Option(
        "--progress-deadline",
        metavar="DURATION",
        help="How long a rollout may make no progress before it fails (600, 90s, 10m).",
    ),
]
