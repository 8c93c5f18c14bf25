"""`flotilla storage ...`: where the organisation's snapshots are kept (libcloud storage locations).

A location is the organisation's own local directory (`--kind local`), an S3-compatible bucket
(`--kind s3`), or any other libcloud storage driver (`--kind libcloud --driver NAME`). The server
checks a location against the storage itself before saving it (a list, a small write and delete)
and saves nothing when the storage refuses it.

The secret key is never a plain flag: it comes from stdin (`--secret-key-stdin`), from the
environment variable `FLOTILLA_STORAGE_SECRET`, or from a hidden prompt on a terminal, so that it
lands neither in shell history nor in the process list. The API never returns credentials.
"""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit

import typer

from cli.app_flags import parse_pairs
from cli.client import JsonObject
from cli.commands.clusters import YesOption, clusters_client
from cli.commands.snapshots import LOCATIONS_PATH, find_location
from cli.errors import CliError, UsageError
from cli.output import OutputOption, print_error, text_of
from cli.progress import WaitExit
from cli.runtime import CommandGroup, confirm, output_for, stdin_is_terminal
from cli.snapshot_tables import LOCATION_COLUMNS, location_rows

app = CommandGroup(help="Storage locations of snapshots: list, show, add, change, check, delete.")

ACCESS_KEY_ENV = "FLOTILLA_STORAGE_ACCESS_KEY"
SECRET_ENV = "FLOTILLA_STORAGE_SECRET"


class StorageKind(StrEnum):
    """The values of `--kind`."""

    local = "local"
    s3 = "s3"
    libcloud = "libcloud"


NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The storage location's name (or id).")]
BucketOption = Annotated[str | None, typer.Option("--bucket", help="The bucket (container) to write to.")]
EndpointOption = Annotated[
    str | None,
    typer.Option("--endpoint", metavar="URL", help="The storage's URL, e.g. https://s3.example.com:9000."),
]
RegionOption = Annotated[str | None, typer.Option("--region", help="The storage's region.")]
PrefixOption = Annotated[
    str | None, typer.Option("--prefix", help="A key prefix inside the bucket (a folder for Flotilla).")
]
DriverOption = Annotated[
    str | None,
    typer.Option(
        "--driver", metavar="PROVIDER", help="For --kind libcloud: the libcloud storage provider's name."
    ),
]
OptionOption = Annotated[
    list[str] | None,
    typer.Option("--option", metavar="KEY=VALUE", help="A non-secret driver option (repeatable)."),
]
AccessKeyOption = Annotated[
    str | None,
    typer.Option(
        "--access-key",
        metavar="KEY",
        help=f"The access key (its id, not the secret); or set {ACCESS_KEY_ENV}.",
    ),
]
SecretStdinOption = Annotated[
    bool,
    typer.Option(
        "--secret-key-stdin",
        help=f"Read the secret key from stdin (else {SECRET_ENV}, else a hidden prompt on a terminal).",
    ),
]
DefaultOption = Annotated[
    bool, typer.Option("--default", help="Make it the organisation's default location for new snapshots.")
]


def read_secret(from_stdin: bool) -> str | None:
    """The secret key: stdin when asked, else the environment, else a hidden prompt on a terminal."""
    if from_stdin:
        if stdin_is_terminal():
            return str(typer.prompt("Secret key", hide_input=True))
        text = sys.stdin.read().rstrip("\r\n")
        if not text:
            raise UsageError("--secret-key-stdin: stdin was empty")
        return text
    from_env = os.environ.get(SECRET_ENV)
    if from_env:
        return from_env
    if stdin_is_terminal():
        return str(typer.prompt("Secret key", hide_input=True))
    return None


def credentials_from(access_key: str | None, secret_stdin: bool, *, required: bool) -> JsonObject | None:
    """`{"key", "secret"}` from the flags and environment; None when none were given and none needed."""
    key = (access_key or os.environ.get(ACCESS_KEY_ENV) or "").strip()
    if not key:
        if secret_stdin:
            raise UsageError(
                "--secret-key-stdin: give the access key too (--access-key or " + ACCESS_KEY_ENV + ")"
            )
        if required:
            raise UsageError(f"give the access key: --access-key KEY or {ACCESS_KEY_ENV}")
        return None
    secret = read_secret(secret_stdin)
    if not secret:
        raise UsageError(
            "the secret key is missing",
            hint=f"pipe it with --secret-key-stdin, or set {SECRET_ENV} (never a flag's value)",
        )
    return {"key": key, "secret": secret}


def _endpoint(value: str) -> str:
    url = value.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--endpoint {value!r}: give a URL such as https://s3.example.com")
    return url


def location_body(
    *,
    bucket: str | None,
    endpoint: str | None,
    region: str | None,
    prefix: str | None,
    driver: str | None,
    option: list[str] | None,
) -> JsonObject:
    """The writable fields given as flags (only those given)."""
    body: JsonObject = {}
    for key, value in (("bucket", bucket), ("region", region), ("prefix", prefix), ("driver", driver)):
        if value is not None:
            body[key] = value.strip()
    if endpoint is not None:
        body["endpoint"] = _endpoint(endpoint) if endpoint.strip() else ""
    if option:
        body["options"] = parse_pairs(option, option="--option")
    return body


@app.command("list")
def list_locations(ctx: typer.Context, output: OutputOption = None) -> None:
    """List the organisation's storage locations: kind, where, default, snapshots, last check."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        items = api.list_all(LOCATIONS_PATH).items
    out.listing(LOCATION_COLUMNS, items, empty="No storage locations.")


@app.command("get")
def get(ctx: typer.Context, name: NameArg, output: OutputOption = None) -> None:
    """Show a storage location (whether credentials are stored; never the credentials)."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        item = api.get(f"{LOCATIONS_PATH}{find_location(api, name)['id']}/")
    if out.is_json:
        out.json(item)
    else:
        out.record(location_rows(item))


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The new location's name (a DNS label).")],
    kind: Annotated[StorageKind, typer.Option("--kind", case_sensitive=False, help="local, s3 or libcloud.")],
    bucket: BucketOption = None,
    endpoint: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
    driver: DriverOption = None,
    option: OptionOption = None,
    access_key: AccessKeyOption = None,
    secret_key_stdin: SecretStdinOption = False,
    default: DefaultOption = False,
    output: OutputOption = None,
) -> None:
    """Add a storage location; the server checks it against the storage before saving anything."""
    out = output_for(ctx, output)
    body: JsonObject = {"name": name.strip(), "kind": kind.value}
    body.update(
        location_body(
            bucket=bucket, endpoint=endpoint, region=region, prefix=prefix, driver=driver, option=option
        )
    )
    if kind is StorageKind.local:
        given = [
            flag
            for flag, value in (("--bucket", bucket), ("--endpoint", endpoint), ("--driver", driver))
            if value
        ]
        if given or access_key or secret_key_stdin:
            raise UsageError(
                f"a local location is the organisation's own directory: it takes no "
                f"{', '.join(given) or 'credentials'}"
            )
    else:
        if not body.get("bucket"):
            raise UsageError(f"--bucket is needed for a {kind.value} location")
        if kind is StorageKind.libcloud and not body.get("driver"):
            raise UsageError(
                "--driver is needed for a libcloud location (the libcloud storage provider's name)"
            )
        if kind is StorageKind.s3 and driver:
            raise UsageError("--driver is for --kind libcloud; an s3 location uses libcloud's S3 driver")
        credentials = credentials_from(access_key, secret_key_stdin, required=False)
        if credentials:
            body["credentials"] = credentials
    if default:
        body["is_default"] = True
    with clusters_client(ctx) as api:
        item = api.post(LOCATIONS_PATH, body)
    if out.is_json:
        out.json(item)
        return
    suffix = " (the default)" if item.get("is_default") else ""
    out.result(f"Added storage location {text_of(item.get('name'))} ({text_of(item.get('kind'))}){suffix}.")


@app.command("update")
def update(
    ctx: typer.Context,
    name: NameArg,
    bucket: BucketOption = None,
    endpoint: EndpointOption = None,
    region: RegionOption = None,
    prefix: PrefixOption = None,
    option: OptionOption = None,
    access_key: AccessKeyOption = None,
    secret_key_stdin: SecretStdinOption = False,
    default: DefaultOption = False,
    output: OutputOption = None,
) -> None:
    """Change a location (only what is given), rotate its credentials, or make it the default."""
    out = output_for(ctx, output)
    body = location_body(
        bucket=bucket, endpoint=endpoint, region=region, prefix=prefix, driver=None, option=option
    )
    # Rotation replaces the key and the secret together: neither is sent alone.
    if access_key is not None or secret_key_stdin:
        body["credentials"] = credentials_from(access_key, secret_key_stdin, required=True)
    if default:
        body["is_default"] = True
    if not body:
        raise UsageError(
            "nothing to change",
            hint="give --bucket, --endpoint, --region, --prefix, --option, "
            "--access-key with the secret, or --default",
        )
    with clusters_client(ctx) as api:
        item = api.patch(f"{LOCATIONS_PATH}{find_location(api, name)['id']}/", body)
    if out.is_json:
        out.json(item)
    else:
        out.result(f"Updated storage location {text_of(item.get('name'))}.")


@app.command("check")
def check(ctx: typer.Context, name: NameArg, output: OutputOption = None) -> None:
    """Check that a location answers (a list, a small write and delete); exit 9 when it does not."""
    out = output_for(ctx, output)
    with clusters_client(ctx) as api:
        location = find_location(api, name)
        item = api.post(f"{LOCATIONS_PATH}{location['id']}/check/", {})
    if out.is_json:
        out.json(item)
    error = item.get("check_error")
    if error:
        print_error(CliError(f"storage location {text_of(location.get('name'))} does not answer: {error}"))
        raise typer.Exit(int(WaitExit.OPERATION_FAILED))
    if not out.is_json:
        out.result(f"Storage location {text_of(location.get('name'))} answers: listed, written and deleted.")


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg, yes: YesOption = False, output: OutputOption = None) -> None:
    """Delete a storage location that holds no snapshots (asks first unless --yes); exit 6 when it does."""
    out = output_for(ctx, output)
    if not yes and not stdin_is_terminal():
        raise UsageError(
            "refusing to delete a storage location without confirmation", hint="pass --yes to confirm"
        )
    with clusters_client(ctx) as api:
        location = find_location(api, name)
        confirm(f"Delete storage location {location['name']} ({text_of(location.get('kind'))})?", yes=yes)
        api.delete(f"{LOCATIONS_PATH}{location['id']}/")
    if not out.is_json:
        out.result(f"Deleted storage location {location['name']}.")
