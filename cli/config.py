"""Where the CLI keeps its credentials, and which ones apply to this run.

The config file is `$FLOTILLA_CONFIG_DIR/config.json`, or else
`${XDG_CONFIG_HOME:-~/.config}/flotilla/config.json`; it holds `{"server", "token", "org"}` and is
only ever readable by its owner (file 0600, directory 0700). `FLOTILLA_SERVER` and
`FLOTILLA_TOKEN` override the file, each on its own, so that CI needs no file at all.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cli.errors import CliError, NotLoggedIn, UsageError

CONFIG_DIR_ENV = "FLOTILLA_CONFIG_DIR"
SERVER_ENV = "FLOTILLA_SERVER"
TOKEN_ENV = "FLOTILLA_TOKEN"
CONFIG_FILE_NAME = "config.json"

LOGIN_HINT = "run `flotilla login --server URL`, or set FLOTILLA_SERVER and FLOTILLA_TOKEN"


@dataclass(frozen=True)
class StoredLogin:
    """What `flotilla login` saves."""

    server: str
    token: str
    org: str | None = None


@dataclass(frozen=True)
class Credentials:
    """The server and token this run uses, and where each came from (for messages)."""

    server: str
    token: str
    org: str | None
    server_source: str
    token_source: str

    @property
    def token_prefix(self) -> str:
        """The token's public part (`flt_<8hex>`), safe to show; never the secret."""
        parts = self.token.split("_")
        return "_".join(parts[:2]) if len(parts) >= 3 else "(unrecognised token format)"


def check_token(value: str, *, source: str) -> str:
    """The token without surrounding whitespace; refuses what could not be an HTTP header value."""
    token = value.strip()
    if not token:
        raise UsageError(f"{source}: the token is empty")
    if not token.isascii() or not token.isprintable() or " " in token:
        raise UsageError(f"{source}: the token contains characters an API token never has")
    return token


def config_dir() -> Path:
    """The directory of the config file."""
    explicit = os.environ.get(CONFIG_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    # The XDG spec says a relative XDG_CONFIG_HOME is invalid and must be ignored.
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "flotilla"


def config_path() -> Path:
    """The path of the config file."""
    return config_dir() / CONFIG_FILE_NAME


def normalize_server(url: str) -> str:
    """`https://host[:port][/prefix]` without a trailing slash or `/api/v1`; refuses anything else."""
    raw = url.strip()
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"invalid server URL {raw!r}: expected http://HOST[:PORT] or https://HOST[:PORT]")
    if parts.query or parts.fragment:
        raise UsageError(f"invalid server URL {raw!r}: it must not have a query or a fragment")
    path = parts.path.rstrip("/")
    if path.endswith("/api/v1"):
        path = path[: -len("/api/v1")]
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def read_login() -> StoredLogin | None:
    """The saved login, or None when there is no config file."""
    path = config_path()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NotLoggedIn(f"cannot read {path}: {exc.strerror}", hint=LOGIN_HINT) from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise NotLoggedIn(f"{path} is not valid JSON", hint=LOGIN_HINT) from exc
    if not isinstance(data, dict):
        raise NotLoggedIn(f"{path} does not hold a JSON object", hint=LOGIN_HINT)
    server, token, org = data.get("server"), data.get("token"), data.get("org")
    if not isinstance(server, str) or not isinstance(token, str) or not server or not token:
        raise NotLoggedIn(f"{path} has no server or token", hint=LOGIN_HINT)
    return StoredLogin(server=server, token=token, org=org if isinstance(org, str) else None)


def write_login(login: StoredLogin) -> Path:
    """Save the login atomically: the new file is created 0600 and then renamed over the old one."""
    directory = config_dir()
    path = directory / CONFIG_FILE_NAME
    try:
        _write_private(directory, path, login)
    except OSError as exc:
        raise CliError(f"cannot save the login to {path}: {exc.strerror or exc}") from exc
    return path


def _write_private(directory: Path, path: Path, login: StoredLogin) -> None:
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        os.chmod(directory, 0o700)  # mkdir's mode is filtered by the umask
    tmp = directory / f".{CONFIG_FILE_NAME}.{os.getpid()}.tmp"
    body = json.dumps({"server": login.server, "token": login.token, "org": login.org}, indent=2) + "\n"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(body)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def delete_login() -> bool:
    """Remove the config file; False when there was none."""
    path = config_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise CliError(f"cannot remove {path}: {exc.strerror or exc}") from exc
    return True


def resolve_credentials() -> Credentials:
    """The credentials of this run: environment variables first, then the config file."""
    env_server = os.environ.get(SERVER_ENV) or None
    env_token = os.environ.get(TOKEN_ENV) or None
    stored = read_login() if not (env_server and env_token) else None
    server = env_server or (stored.server if stored else None)
    token = env_token or (stored.token if stored else None)
    if not token:
        raise NotLoggedIn("not logged in", hint=LOGIN_HINT)
    if not server:
        raise NotLoggedIn(f"{TOKEN_ENV} is set but no server is known", hint=f"set {SERVER_ENV} too")
    org = stored.org if stored and not env_token else None
    return Credentials(
        server=normalize_server(server),
        token=check_token(token, source=TOKEN_ENV if env_token else str(config_path())),
        org=org,
        server_source=SERVER_ENV if env_server else str(config_path()),
        token_source=TOKEN_ENV if env_token else str(config_path()),
    )
