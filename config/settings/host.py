"""A single-host install, as `scripts/run.sh` runs it: DEBUG off, no secret from the repository.

The secret key, the encryption keys and the metrics token come from the environment when set,
otherwise from `<FLOTILLA_DATA_DIR>/secrets.json`, generated on the first run
(config.install_secrets). Served on plain HTTP on a loopback address by default; behind a TLS
proxy, set FLOTILLA_PUBLIC_URL=https://… and the secure-cookie, HSTS and redirect settings follow
(`manage.py check --deploy` is clean then).
"""

from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

from config import install_secrets
from config.env import env_bool, env_int, env_list, env_str
from config.settings.base import *  # noqa: F403

DEBUG = False
DATA_DIR = install_secrets.default_data_dir()
_generated = install_secrets.load_or_create(DATA_DIR)
SECRET_KEY = env_str("FLOTILLA_SECRET_KEY", _generated["secret_key"])
SECRET_KEY_FALLBACKS = list(_generated.get("secret_key_fallbacks", []))
FLOTILLA_ENCRYPTION_KEYS = env_list("FLOTILLA_ENCRYPTION_KEYS", _generated["encryption_keys"])
METRICS_TOKEN = env_str("FLOTILLA_METRICS_TOKEN", _generated["metrics_token"])

PUBLIC_URL = env_str("FLOTILLA_PUBLIC_URL", "")
_public = urlparse(PUBLIC_URL) if PUBLIC_URL else None
if _public is not None and (_public.scheme not in {"http", "https"} or not _public.hostname):
    raise ImproperlyConfigured(
        "FLOTILLA_PUBLIC_URL must be an http(s) URL, e.g. https://flotilla.example.com"
    )
_default_hosts = ["localhost", "127.0.0.1", "[::1]"]
if _public is not None and _public.hostname:
    _default_hosts.insert(0, _public.hostname)
ALLOWED_HOSTS = env_list("FLOTILLA_ALLOWED_HOSTS", _default_hosts)
if _public is not None:
    CSRF_TRUSTED_ORIGINS = [*CSRF_TRUSTED_ORIGINS, f"{_public.scheme}://{_public.netloc}"]  # noqa: F405

if _public is not None and _public.scheme == "https":
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("FLOTILLA_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("FLOTILLA_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("FLOTILLA_HSTS_PRELOAD", True)
