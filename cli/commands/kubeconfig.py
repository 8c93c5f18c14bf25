"""`flotilla kubeconfig NAME`: fetch a cluster's admin kubeconfig and merge it into yours.

The server's kubeconfig has one context (its current one is used when it has several). Merged,
its cluster, user and context entries are all named `flotilla-<org>-<cluster>`, so that they never
clash with entries from elsewhere and a second download replaces the first. Everything else in the
file is kept (PyYAML does not keep comments). The current context changes only with `--use`, or
when the file had none. The file is written with mode 0600, atomically (a temporary file renamed
over it), under kubectl's lock file `<file>.lock`.
"""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from cli.commands.clusters import cluster_path, clusters_client, find_cluster
from cli.commands.orgs import CURRENT_PATH
from cli.errors import CliError, ExitCode, UsageError
from cli.output import OutputOption, text_of
from cli.runtime import CommandGroup, output_for

LOCK_TIMEOUT = 5.0
ENTRY_KINDS = (("clusters", "cluster"), ("users", "user"), ("contexts", "context"))

KubeConfig = dict[str, Any]


def default_path() -> Path:
    """Where kubectl looks: the first existing file of `$KUBECONFIG` (else its first), or ~/.kube/config."""
    listed = [p for p in os.environ.get("KUBECONFIG", "").split(os.pathsep) if p]
    for candidate in listed:
        if Path(candidate).expanduser().exists():
            return Path(candidate).expanduser()
    if listed:
        return Path(listed[0]).expanduser()
    return Path.home() / ".kube" / "config"


def entry_name(org: str, cluster: str) -> str:
    """The name of the merged cluster, user and context entries."""
    return f"flotilla-{org}-{cluster}"


def parse_kubeconfig(text: str, *, source: str) -> KubeConfig:
    """A kubeconfig's YAML as a mapping; an empty document is an empty config."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CliError(f"{source} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise CliError(f"{source} is not a kubeconfig (its YAML is not a mapping)")
    return data


def _named(config: KubeConfig, key: str, name: Any, *, source: str) -> dict[str, Any]:
    for item in _entries(config, key, source=source):
        if item.get("name") == name:
            return item
    raise CliError(f"{source}: no {key[:-1]} named {name!r}", ExitCode.SERVER)


def _entries(config: KubeConfig, key: str, *, source: str) -> list[dict[str, Any]]:
    items = config.get(key) or []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise CliError(f"{source}: `{key}` is not a list of entries")
    return items


def extract(config: KubeConfig, name: str, *, source: str) -> dict[str, dict[str, Any]]:
    """The cluster, user and context entries of the config's context, all renamed to `name`."""
    contexts = _entries(config, "contexts", source=source)
    current = config.get("current-context")
    chosen = next((c for c in contexts if c.get("name") == current), None)
    if chosen is None and len(contexts) == 1:
        chosen = contexts[0]
    if chosen is None or not isinstance(chosen.get("context"), dict):
        raise CliError(f"{source} names no context to use", ExitCode.SERVER)
    context = dict(chosen["context"])
    cluster = _named(config, "clusters", context.get("cluster"), source=source)
    user = _named(config, "users", context.get("user"), source=source)
    context.update(cluster=name, user=name)
    return {
        "clusters": {"name": name, "cluster": copy.deepcopy(cluster.get("cluster") or {})},
        "users": {"name": name, "user": copy.deepcopy(user.get("user") or {})},
        "contexts": {"name": name, "context": context},
    }


def merge(
    existing: KubeConfig, entries: dict[str, dict[str, Any]], *, use: bool, source: str
) -> tuple[KubeConfig, bool]:
    """The existing config with the entries added or replaced; and whether current-context was set."""
    config = copy.deepcopy(existing)
    config.setdefault("apiVersion", "v1")
    config.setdefault("kind", "Config")
    config.setdefault("preferences", {})
    for key, _ in ENTRY_KINDS:
        items = _entries(config, key, source=source)
        entry = entries[key]
        for index, item in enumerate(items):
            if item.get("name") == entry["name"]:
                items[index] = entry
                break
        else:
            items.append(entry)
        config[key] = items
    set_current = use or not config.get("current-context")
    if set_current:
        config["current-context"] = entries["contexts"]["name"]
    return config, set_current


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold `<path>.lock` (the lock file kubectl also uses) while the file is rewritten; creates the
    file's directory (0700) when missing."""
    if not path.parent.exists():
        # A new ~/.kube: private, as kubectl makes it.
        path.parent.mkdir(mode=0o700, parents=True)
    lock = path.with_name(path.name + ".lock")
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise CliError(
                    f"{lock} exists: another kubectl or flotilla is writing {path}",
                    hint=f"remove {lock} if no such program is running",
                ) from None
            time.sleep(0.1)
    os.close(fd)
    try:
        yield
    finally:
        lock.unlink(missing_ok=True)


def write_private(path: Path, text: str) -> None:
    """Replace `path` atomically by a 0600 file holding `text`."""
    directory = path.parent
    tmp = directory / f".{path.name}.flotilla-{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def merge_into_file(path: Path, entries: dict[str, dict[str, Any]], *, use: bool) -> bool:
    """Merge the entries into the kubeconfig file at `path` (created if missing); True when it set
    the current context."""
    with locked(path):
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            text = ""
        existing = parse_kubeconfig(text, source=str(path))
        config, set_current = merge(existing, entries, use=use, source=str(path))
        write_private(path, yaml.safe_dump(config, default_flow_style=False, sort_keys=False))
    return set_current


def kubeconfig(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The cluster's name.")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            metavar="PATH",
            help="The kubeconfig file to write (default: $KUBECONFIG's, else ~/.kube/config).",
            show_default=False,
        ),
    ] = None,
    merge_: Annotated[
        bool,
        typer.Option(
            "--merge/--no-merge",
            help="Merge into the file (default), or write the server's kubeconfig alone (needs --file).",
        ),
    ] = True,
    use: Annotated[bool, typer.Option("--use", help="Also make it kubectl's current context.")] = False,
    to_stdout: Annotated[
        bool, typer.Option("--stdout", help="Print the server's kubeconfig instead of writing a file.")
    ] = False,
    output: OutputOption = None,
) -> None:
    """Download a cluster's admin kubeconfig and merge it into your kubeconfig file (mode 0600)."""
    out = output_for(ctx, output)
    if to_stdout and (file is not None or use or not merge_):
        raise UsageError(
            "--stdout prints the kubeconfig; it cannot be combined with --file, --use or --no-merge"
        )
    if not merge_ and file is None:
        raise UsageError("--no-merge writes the kubeconfig alone and needs --file PATH")
    if not merge_ and use:
        raise UsageError("--use applies to a merge; the server's kubeconfig already names its context")
    with clusters_client(ctx) as api:
        cluster = find_cluster(api, name)
        text = api.get_text(f"{cluster_path(cluster)}kubeconfig/")
        slug = None if to_stdout or not merge_ else api.get(CURRENT_PATH).get("slug")
    if to_stdout:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    server_config = parse_kubeconfig(text, source="the server's kubeconfig")
    target = (file.expanduser() if file is not None else default_path()).resolve()
    try:
        if merge_:
            context = entry_name(str(slug or "org"), str(cluster["name"]))
            entries = extract(server_config, context, source="the server's kubeconfig")
            set_current = merge_into_file(target, entries, use=use)
        else:
            context = str(server_config.get("current-context") or "")
            set_current = False
            with locked(target):
                write_private(target, text)
    except OSError as exc:
        raise CliError(f"cannot write {target}: {exc.strerror or exc}") from exc
    if out.is_json:
        out.json(
            {"cluster": cluster["name"], "path": str(target), "context": context, "current": set_current}
        )
        return
    action = "Merged" if merge_ else "Wrote"
    out.result(f"{action} the kubeconfig of {cluster['name']} into {target} as context {text_of(context)}.")
    if merge_ and set_current:
        out.note(f"Current context is now {context}.")
    elif merge_:
        out.note(f"Use it with `kubectl --context {context} get nodes`, or pass --use to make it current.")


def register(app: CommandGroup) -> None:
    """Add `flotilla kubeconfig` to the root app."""
    app.command("kubeconfig")(kubeconfig)
