"""`flotilla apps ...`: deploy containerised apps to clusters, change, scale, roll back and adopt them.

An app is named by its name (resolved with `GET clusters/apps/?name=`); when apps of that name run
in several clusters or namespaces, `--cluster` and `--namespace` pick one. Every change answers
with an operation; `--wait` follows it as `flotilla clusters` does (exit 9 failed, 10 timed out).
Secret values go to the server only: the API never returns them and nothing here prints them.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

import typer

from cli.app_flags import (
    CLEAR,
    check_health,
    parse_env_names,
    parse_pairs,
    parse_ports,
    parse_seconds,
    resources_from,
    secrets_from,
    split_words,
)
from cli.app_options import (
    AnnotationOption,
    ArgsOption,
    ClusterOption,
    CommandOption,
    CpuLimitOption,
    CpuOption,
    DeadlineOption,
    EnvOption,
    HealthOption,
    IdempotencyOption,
    ImageOption,
    LabelOption,
    LivenessOption,
    MemoryLimitOption,
    MemoryOption,
    NameArg,
    NamespaceOption,
    PortOption,
    ReplicasOption,
    SecretFileOption,
    SecretOption,
)
from cli.app_tables import (
    APP_COLUMNS,
    POD_COLUMNS,
    REVISION_COLUMNS,
    WORKLOAD_COLUMNS,
    app_rows,
    ready_cell,
    where,
)
from cli.client import ApiClient, JsonObject
from cli.commands.clusters import (
    YesOption,
    cluster_path,
    clusters_client,
    find_cluster,
)
from cli.errors import ApiError, CliError, ExitCode, UsageError
from cli.output import Output, OutputOption, text_of
from cli.progress import TimeoutOption, WaitOption, follow, parse_timeout
from cli.runtime import CommandGroup, confirm, output_for, stdin_is_terminal

app = CommandGroup(
    help="Apps (containerised workloads) on clusters: deploy, update, scale, restart, roll back, adopt."
)

APPS_PATH = "clusters/apps/"
DEFAULT_NAMESPACE = "default"


# --- naming -------------------------------------------------------------------------------------


def app_path(item: JsonObject) -> str:
    """The API path of an app."""
    return f"{APPS_PATH}{item['id']}/"


def _cluster_id(item: JsonObject) -> object:
    cluster = item.get("cluster")
    return cluster.get("id") if isinstance(cluster, dict) else cluster


def find_app(api: ApiClient, name: str, *, cluster: str | None, namespace: str | None) -> JsonObject:
    """The one app with this name (in `cluster` / `namespace` when given); exit 5 for none, 2 for several."""
    wanted = name.strip()
    if not wanted:
        raise UsageError("NAME: the app name is empty")
    params: dict[str, str | int] = {"name": wanted}
    cluster_id: Any = None
    if cluster:
        cluster_id = find_cluster(api, cluster)["id"]
        params["cluster"] = cluster_id
    if namespace:
        params["namespace"] = namespace.strip()
    # Filter again here: a server that ignored a parameter must not make the CLI pick a wrong app.
    matches = [
        item
        for item in api.list_all(APPS_PATH, params).items
        if item.get("name") == wanted
        and (cluster_id is None or _cluster_id(item) == cluster_id)
        and (not namespace or item.get("namespace") == namespace.strip())
    ]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        scope = "".join(
            (
                f" in cluster {cluster.strip()}" if cluster else "",
                f" in namespace {namespace.strip()}" if namespace else "",
            )
        )
        raise CliError(
            f"no app named {wanted!r}{scope}", ExitCode.NOT_FOUND, hint="`flotilla apps list` shows them"
        )
    places = ", ".join(sorted(where(item) for item in matches))
    raise UsageError(
        f"several apps are named {wanted!r} (cluster/namespace: {places})",
        hint="add --cluster and/or --namespace to pick one",
    )


def _refuse_without_yes(yes: bool, what: str) -> None:
    # Refuse before touching the server: a script that forgot --yes must not half-run.
    if not yes and not stdin_is_terminal():
        raise UsageError(f"refusing to {what} without confirmation", hint="pass --yes to confirm")


def _fresh(api: ApiClient, item: JsonObject) -> JsonObject:
    try:
        return api.get(app_path(item))
    except ApiError as exc:
        if exc.status == 404:
            return item
        raise


def _follow_accepted(
    out: Output,
    api: ApiClient,
    accepted: JsonObject,
    *,
    verb: str,
    wait: bool,
    timeout: float | None,
    deleting: bool = False,
    then: str = "",
) -> None:
    item, operation = accepted.get("app"), accepted.get("operation")
    if not isinstance(item, dict) or not isinstance(operation, dict) or "id" not in operation:
        raise CliError("unexpected answer from the server: no app and operation", ExitCode.SERVER)
    name = text_of(item.get("name"))

    def shape(op: JsonObject) -> JsonObject:
        return {"app": _fresh(api, item) if wait else item, "operation": op}

    def done() -> str:
        if deleting:
            return f"Deleted app {name} from {where(item)}."
        fresh = _fresh(api, item)
        return (
            f"App {name} is {text_of(fresh.get('status'))}: {ready_cell(fresh)} ready, "
            f"revision {text_of(fresh.get('revision'))}."
        )

    follow(
        out,
        api,
        operation,
        wait=wait,
        timeout=timeout,
        started=f"{verb} app {name} ({where(item)}){then}",
        done=done,
        body=shape,
    )


def _spec_flags(
    *,
    image: str | None,
    replicas: int | None,
    command: str | None,
    args: str | None,
    health: str | None,
    liveness: str | None,
    progress_deadline: str | None,
    clearable: bool,
) -> JsonObject:
    body: JsonObject = {}
    if image is not None:
        if not image.strip():
            raise UsageError("--image: the image is empty")
        body["image"] = image.strip()
    if replicas is not None:
        body["replicas"] = replicas
    if command is not None:
        body["command"] = split_words(command, option="--command")
    if args is not None:
        body["args"] = split_words(args, option="--args")
    if health is not None:
        body["readiness"] = check_health(health, option="--health", clearable=clearable)
    if liveness is not None:
        body["liveness"] = check_health(liveness, option="--liveness", clearable=clearable)
    if progress_deadline is not None:
        body["progress_deadline"] = parse_seconds(progress_deadline, option="--progress-deadline")
    return body


# --- commands -----------------------------------------------------------------------------------


@app.command("deploy")
def deploy(
    ctx: typer.Context,
    name: NameArg,
    cluster: Annotated[
        str, typer.Option("--cluster", "-c", metavar="CLUSTER", help="The cluster to deploy to.")
    ],
    image: Annotated[
        str,
        typer.Option("--image", help="The container image, e.g. nginx:1.27 or ghcr.io/acme/web@sha256:..."),
    ],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", metavar="NS", help="The Kubernetes namespace.")
    ] = DEFAULT_NAMESPACE,
    replicas: ReplicasOption = None,
    port: PortOption = None,
    env: EnvOption = None,
    secret: SecretOption = None,
    secret_from_file: SecretFileOption = None,
    cpu: CpuOption = None,
    memory: MemoryOption = None,
    cpu_limit: CpuLimitOption = None,
    memory_limit: MemoryLimitOption = None,
    health: HealthOption = None,
    liveness: LivenessOption = None,
    label: LabelOption = None,
    annotation: AnnotationOption = None,
    command: CommandOption = None,
    args: ArgsOption = None,
    progress_deadline: DeadlineOption = None,
    idempotency_key: IdempotencyOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Deploy an app: a Deployment, plus a Service when it has ports and a Secret when it has secrets."""
    out = output_for(ctx, output)
    body: JsonObject = {"name": name.strip(), "namespace": namespace.strip()}
    body.update(
        _spec_flags(
            image=image,
            replicas=replicas,
            command=command,
            args=args,
            health=health,
            liveness=liveness,
            progress_deadline=progress_deadline,
            clearable=False,
        )
    )
    if port:
        body["ports"] = parse_ports(port)
    if env:
        body["env"] = parse_pairs(env, option="--env", names_env=True)
    secrets = secrets_from(secret, secret_from_file)
    if secrets:
        body["secrets"] = secrets
    resources = resources_from(cpu, memory, cpu_limit, memory_limit)
    if resources:
        body["resources"] = resources
    if label:
        body["labels"] = parse_pairs(label, option="--label")
    if annotation:
        body["annotations"] = parse_pairs(annotation, option="--annotation")
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        body = {"cluster": find_cluster(api, cluster)["id"], **body}
        with api.header("Idempotency-Key", idempotency_key.strip() if idempotency_key else None):
            accepted = api.post(APPS_PATH, body)
        _follow_accepted(out, api, accepted, verb="Deploying", wait=wait, timeout=seconds)


@app.command("list")
def list_apps(
    ctx: typer.Context,
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only apps in this status, e.g. available or failed.")
    ] = None,
    output: OutputOption = None,
) -> None:
    """List the organisation's apps: cluster, namespace, image, ready replicas, status, revision."""
    out = output_for(ctx, output)
    params: dict[str, str | int] = {}
    if namespace:
        params["namespace"] = namespace.strip()
    if status:
        params["status"] = status.strip()
    with clusters_client(ctx) as api:
        if cluster:
            params["cluster"] = find_cluster(api, cluster)["id"]
        items = api.list_all(APPS_PATH, params or None).items
    out.listing(APP_COLUMNS, items, empty="No apps.")


@app.command("get")
def get(
    ctx: typer.Context,
    name: NameArg,
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = None,
) -> None:
    """Show one app (its spec, replicas and operation), its pods and its revisions."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        item = api.get(app_path(find_app(api, name, cluster=cluster, namespace=namespace)))
        if out.is_json:
            out.json(item)
            return
        revisions = api.get_list(f"{app_path(item)}revisions/")
        pods_error = ""
        try:
            pods: list[JsonObject] | None = api.get_list(f"{app_path(item)}pods/")
        except ApiError as exc:
            # The record is worth showing when the cluster cannot be asked about its pods right now.
            if exc.exit_code not in (ExitCode.SERVER, ExitCode.CONFLICT):
                raise
            pods = None
            pods_error = exc.message
    out.record(app_rows(item))
    out.result("")
    if pods is None:
        out.warn(f"cannot list the pods: {pods_error}")
    else:
        out.table(POD_COLUMNS, pods, empty="No pods.")
    out.result("")
    out.table(REVISION_COLUMNS, _by_number(revisions), empty="No revisions.")


def _by_number(revisions: list[JsonObject]) -> list[JsonObject]:
    return sorted(revisions, key=_number)


def _number(revision: JsonObject) -> int:
    number = revision.get("number")
    return number if isinstance(number, int) else 0


@app.command("update")
def update(
    ctx: typer.Context,
    name: NameArg,
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    image: ImageOption = None,
    replicas: ReplicasOption = None,
    port: Annotated[
        list[str] | None,
        typer.Option(
            "--port",
            "-p",
            metavar="[NAME=]PORT[/PROTO]",
            help="The container ports (repeatable), replacing them all; `--port none` removes them.",
        ),
    ] = None,
    env: EnvOption = None,
    unset_env: Annotated[
        list[str] | None,
        typer.Option("--unset-env", metavar="KEY", help="Remove an environment variable (repeatable)."),
    ] = None,
    secret: SecretOption = None,
    secret_from_file: SecretFileOption = None,
    unset_secret: Annotated[
        list[str] | None,
        typer.Option("--unset-secret", metavar="KEY", help="Remove a secret variable (repeatable)."),
    ] = None,
    cpu: CpuOption = None,
    memory: MemoryOption = None,
    cpu_limit: CpuLimitOption = None,
    memory_limit: MemoryLimitOption = None,
    health: Annotated[
        str | None,
        typer.Option("--health", metavar="CHECK", help="Readiness check as for deploy; `none` removes it."),
    ] = None,
    liveness: Annotated[
        str | None,
        typer.Option("--liveness", metavar="CHECK", help="Liveness check as for deploy; `none` removes it."),
    ] = None,
    label: LabelOption = None,
    command: CommandOption = None,
    args: ArgsOption = None,
    progress_deadline: DeadlineOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Change an app: only what is given changes (a new revision, rolled out like kubectl's)."""
    out = output_for(ctx, output)
    body = _spec_flags(
        image=image,
        replicas=replicas,
        command=command,
        args=args,
        health=health,
        liveness=liveness,
        progress_deadline=progress_deadline,
        clearable=True,
    )
    if port:
        body["ports"] = [] if [p.strip().lower() for p in port] == [CLEAR] else parse_ports(port)
    env_set = parse_pairs(env, option="--env", names_env=True)
    env_unset = parse_env_names(unset_env, option="--unset-env")
    both = sorted(set(env_set) & set(env_unset))
    if both:
        raise UsageError(f"--env and --unset-env both name {', '.join(both)}")
    secrets = secrets_from(secret, secret_from_file)
    secrets_unset = parse_env_names(unset_secret, option="--unset-secret")
    both = sorted(set(secrets) & set(secrets_unset))
    if both:
        raise UsageError(f"--secret and --unset-secret both name {', '.join(both)}")
    resources = resources_from(cpu, memory, cpu_limit, memory_limit)
    labels = parse_pairs(label, option="--label")
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        item = find_app(api, name, cluster=cluster, namespace=namespace)
        spec = _mapping(item.get("spec"))
        # The API replaces a list or mapping given in a PATCH: merge the changes into the current ones.
        if env_set or env_unset:
            body["env"] = _merged_env(out, spec, env_set, env_unset)
        if resources:
            body["resources"] = {**_mapping(spec.get("resources")), **resources}
        if labels:
            body["labels"] = {**_mapping(spec.get("labels")), **labels}
        if secrets:
            body["secrets"] = secrets
        if secrets_unset:
            known = {str(key) for key in spec.get("secret_keys") or []}
            for key in secrets_unset:
                if key not in known:
                    out.warn(f"{item['name']} has no secret variable {key}")
            removed = [key for key in secrets_unset if key in known]
            if removed:
                body["remove_secrets"] = removed
        if not body:
            raise UsageError(
                "nothing to change", hint="give --image, --replicas, --env, --secret, --port, --cpu, ..."
            )
        accepted = api.patch(app_path(item), body)
        _follow_accepted(out, api, accepted, verb="Updating", wait=wait, timeout=seconds)


def _mapping(value: object) -> JsonObject:
    return value if isinstance(value, dict) else {}


def _merged_env(out: Output, spec: JsonObject, sets: dict[str, str], unsets: list[str]) -> list[JsonObject]:
    current = {
        str(var.get("name")): str(var.get("value", ""))
        for var in spec.get("env") or []
        if isinstance(var, dict)
    }
    for key in unsets:
        if key not in current:
            out.warn(f"no environment variable {key} to remove")
        current.pop(key, None)
    current.update(sets)
    return [{"name": key, "value": value} for key, value in current.items()]


@app.command("scale")
def scale(
    ctx: typer.Context,
    name: NameArg,
    replicas: Annotated[
        int, typer.Argument(metavar="REPLICAS", min=0, max=1000, help="How many pods to run.")
    ],
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Set how many pods an app runs."""
    out = output_for(ctx, output)
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        item = find_app(api, name, cluster=cluster, namespace=namespace)
        accepted = api.post(f"{app_path(item)}scale/", {"replicas": replicas})
        _follow_accepted(
            out, api, accepted, verb="Scaling", wait=wait, timeout=seconds, then=f" to {replicas}"
        )


@app.command("restart")
def restart(
    ctx: typer.Context,
    name: NameArg,
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Replace every pod of an app, a few at a time (as `kubectl rollout restart`)."""
    out = output_for(ctx, output)
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        item = find_app(api, name, cluster=cluster, namespace=namespace)
        accepted = api.post(f"{app_path(item)}restart/", {})
        _follow_accepted(out, api, accepted, verb="Restarting", wait=wait, timeout=seconds)


@app.command("history")
def history(
    ctx: typer.Context,
    name: NameArg,
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = None,
) -> None:
    """An app's revisions, oldest first; `*` marks the current one."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        item = find_app(api, name, cluster=cluster, namespace=namespace)
        revisions = api.get_list(f"{app_path(item)}revisions/")
    if out.is_json:
        out.json(revisions)  # the API's order, unchanged
        return
    out.table(REVISION_COLUMNS, _by_number(revisions), empty="No revisions.")


def previous_revision(revisions: list[JsonObject]) -> int:
    """The revision before the current one (as `kubectl rollout undo` goes back to)."""
    numbers = [_number(r) for r in revisions if isinstance(r.get("number"), int)]
    current = next(
        (_number(r) for r in revisions if r.get("current") and _number(r)), max(numbers, default=0)
    )
    earlier = [n for n in numbers if n < current]
    if not earlier:
        raise UsageError(
            "the app has no revision before its current one", hint="`flotilla apps history NAME`"
        )
    return max(earlier)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: NameArg,
    revision: Annotated[
        int | None,
        typer.Argument(
            metavar="[REVISION]", min=1, help="The revision to go back to (default: the previous one)."
        ),
    ] = None,
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Deploy an earlier revision's spec again (as a new revision)."""
    out = output_for(ctx, output)
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        item = find_app(api, name, cluster=cluster, namespace=namespace)
        target = revision
        if target is None:
            target = previous_revision(api.get_list(f"{app_path(item)}revisions/"))
        accepted = api.post(f"{app_path(item)}rollback/", {"revision": target})
        _follow_accepted(
            out, api, accepted, verb="Rolling back", wait=wait, timeout=seconds, then=f" to revision {target}"
        )


@app.command("delete")
def delete(
    ctx: typer.Context,
    name: NameArg,
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    yes: YesOption = False,
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Delete an app: its workload, Service and Secret (asks first unless --yes)."""
    out = output_for(ctx, output)
    _refuse_without_yes(yes, "delete an app")
    seconds = parse_timeout(timeout)
    with clusters_client(ctx) as api:
        item = find_app(api, name, cluster=cluster, namespace=namespace)
        confirm(
            f"Delete app {item['name']} ({where(item)}, {ready_cell(item)} ready) and its pods? "
            "This cannot be undone.",
            yes=yes,
        )
        accepted = api.request_delete(app_path(item))
        _follow_accepted(out, api, accepted, verb="Deleting", wait=wait, timeout=seconds, deleting=True)


@app.command("pods")
def pods(
    ctx: typer.Context,
    name: NameArg,
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = None,
) -> None:
    """An app's pods as the cluster reports them now (as `kubectl get pods`)."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        item = find_app(api, name, cluster=cluster, namespace=namespace)
        items = api.get_list(f"{app_path(item)}pods/")
    out.listing(POD_COLUMNS, items, empty="No pods.")


@app.command("delete-pod")
def delete_pod(
    ctx: typer.Context,
    name: NameArg,
    pod: Annotated[str, typer.Argument(metavar="POD", help="The pod's name (`flotilla apps pods NAME`).")],
    cluster: ClusterOption = None,
    namespace: NamespaceOption = None,
    output: OutputOption = None,
) -> None:
    """Delete one pod of an app; its workload starts a new one (as `kubectl delete pod`)."""
    out = output_for(ctx, output)
    wanted = pod.strip()
    if not wanted:
        raise UsageError("POD: the pod name is empty")
    with clusters_client(ctx) as api:
        item = find_app(api, name, cluster=cluster, namespace=namespace)
        try:
            # Quoted: a typed '/' must not reach another endpoint.
            api.post(f"{app_path(item)}pods/{quote(wanted, safe='')}/delete/", {})
        except ApiError as exc:
            if exc.status == 404:
                raise CliError(
                    f"app {item['name']} has no pod named {wanted!r}",
                    ExitCode.NOT_FOUND,
                    hint=f"`flotilla apps pods {item['name']}` lists them",
                ) from exc
            raise
    if not out.is_json:
        out.result(f"Deleted pod {wanted} of app {item['name']}; its workload starts another.")


@app.command("workloads")
def workloads(
    ctx: typer.Context,
    cluster: Annotated[str, typer.Option("--cluster", "-c", metavar="CLUSTER", help="The cluster's name.")],
    namespace: NamespaceOption = None,
    output: OutputOption = None,
) -> None:
    """Every Deployment, StatefulSet and DaemonSet of a cluster, Flotilla's apps or not."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        items = api.get_list(f"{cluster_path(find_cluster(api, cluster))}workloads/")
    if namespace:
        items = [w for w in items if w.get("namespace") == namespace.strip()]
    out.listing(WORKLOAD_COLUMNS, items, empty="No workloads.")


@app.command("adopt")
def adopt(
    ctx: typer.Context,
    workload: Annotated[str, typer.Argument(metavar="WORKLOAD", help="The workload's name in the cluster.")],
    cluster: Annotated[str, typer.Option("--cluster", "-c", metavar="CLUSTER", help="The cluster's name.")],
    namespace: Annotated[
        str, typer.Option("--namespace", "-n", metavar="NS", help="The workload's namespace.")
    ],
    kind: Annotated[str, typer.Option("--kind", help="The workload's kind.")] = "Deployment",
    wait: WaitOption = False,
    timeout: TimeoutOption = None,
    output: OutputOption = None,
) -> None:
    """Make an existing workload a Flotilla app (the server refuses what it cannot manage, saying why)."""
    out = output_for(ctx, output)
    seconds = parse_timeout(timeout)
    body = {"kind": kind.strip(), "namespace": namespace.strip(), "name": workload.strip()}
    with clusters_client(ctx) as api:
        accepted = api.post(f"{cluster_path(find_cluster(api, cluster))}workloads/adopt/", body)
        _follow_accepted(out, api, accepted, verb="Adopting", wait=wait, timeout=seconds)
