"""The secrets of a single-host install, generated on its first run and kept in its data directory.

`scripts/run.sh` installs Flotilla on one host. Nothing it runs with may come from the
repository: the Django secret key, the Fernet keys that encrypt cloud credentials and
kubeconfigs, and the `/metrics` bearer token are generated the first time into
`<data dir>/secrets.json` (mode 0600, created atomically so that the web server and the worker
starting together agree on one file) and read back on every later start. An environment
variable still wins over the file, so an operator can keep them in a vault instead.

Rotation (`manage.py rotate_install_secrets`, see docs/configuration.md) keeps the previous
secret key as a fallback (sessions and signed links survive) and the previous encryption keys
after the new one (every stored secret stays readable until `rotate_secrets` has re-encrypted it).

This module is imported by the settings, so it uses nothing of Django's.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

FILE_NAME = "secrets.json"
FORMAT_VERSION = 1


def default_data_dir() -> Path:
    """Where a single-host install keeps its state (FLOTILLA_DATA_DIR)."""
    explicit = os.environ.get("FLOTILLA_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "flotilla"


def _new_secret_key() -> str:
    return secrets.token_urlsafe(64)


def _new_encryption_key() -> str:
    return Fernet.generate_key().decode()


def _new_metrics_token() -> str:
    return "mt_" + secrets.token_urlsafe(32)


def generate() -> dict[str, Any]:
    """A fresh set of install secrets."""
    return {
        "version": FORMAT_VERSION,
        "secret_key": _new_secret_key(),
        "secret_key_fallbacks": [],
        "encryption_keys": [_new_encryption_key()],
        "metrics_token": _new_metrics_token(),
    }


def _validate(data: Any, path: Path) -> dict[str, Any]:
    problem = None
    if not isinstance(data, dict):
        problem = "it is not a JSON object"
    elif not isinstance(data.get("secret_key"), str) or len(data["secret_key"]) < 50:
        problem = "secret_key is missing or shorter than 50 characters"
    elif not isinstance(data.get("encryption_keys"), list) or not data["encryption_keys"]:
        problem = "encryption_keys is missing or empty"
    elif not isinstance(data.get("metrics_token"), str) or not data["metrics_token"]:
        problem = "metrics_token is missing"
    if problem:
        raise RuntimeError(f"{path}: {problem}; fix it (removing it makes every stored secret unreadable)")
    checked: dict[str, Any] = data
    return checked


def _private_temp_copy(path: Path, data: dict[str, Any]) -> str:
    """`data` written and synced to a new mode-0600 file beside `path`; returns its name."""
    fd, tmp = tempfile.mkstemp(prefix=".secrets-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def _write_new(path: Path, data: dict[str, Any]) -> bool:
    """Write `data` to `path` only if no file is there yet; False when another process won."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = _private_temp_copy(path, data)
    try:
        # link() fails if the name exists: of two processes starting at once, one wins.
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


def _replace(path: Path, data: dict[str, Any]) -> None:
    """Atomically replace the file (rotation)."""
    tmp = _private_temp_copy(path, data)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read(path: Path) -> dict[str, Any]:
    """The secrets stored at `path`, refusing a file that others may read."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise RuntimeError(f"{path} is readable by other users (mode {mode:o}); run: chmod 600 {path}")
    with path.open() as fh:
        try:
            return _validate(json.load(fh), path)
        except json.JSONDecodeError as exc:
            raise RuntimeError(f"{path} is not valid JSON ({exc})") from exc


def load_or_create(data_dir: Path | None = None) -> dict[str, Any]:
    """The install's secrets, generated into the data directory the first time."""
    path = (data_dir or default_data_dir()) / FILE_NAME
    if not path.exists():
        _write_new(path, generate())
    return read(path)


def rotate(
    data_dir: Path | None = None,
    *,
    secret_key: bool = False,
    encryption_key: bool = False,
    metrics_token: bool = False,
    drop_old_encryption_keys: bool = False,
) -> dict[str, Any]:
    """Rotate the chosen secrets in place and return the new contents.

    A new secret key keeps the previous one as a fallback; a new encryption key goes first and
    the old ones stay after it until `drop_old_encryption_keys` (run only after
    `manage.py rotate_secrets` has re-encrypted every stored value).
    """
    path = (data_dir or default_data_dir()) / FILE_NAME
    data = read(path)
    if secret_key:
        data["secret_key_fallbacks"] = [data["secret_key"], *data.get("secret_key_fallbacks", [])][:2]
        data["secret_key"] = _new_secret_key()
    if encryption_key:
        data["encryption_keys"] = [_new_encryption_key(), *data["encryption_keys"]]
    if drop_old_encryption_keys:
        data["encryption_keys"] = data["encryption_keys"][:1]
    if metrics_token:
        data["metrics_token"] = _new_metrics_token()
    _replace(path, data)
    return data
