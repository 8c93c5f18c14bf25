"""Production: DEBUG off, secrets required from the environment, HTTPS everywhere."""

from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_int
from config.settings.base import *  # noqa: F403

DEBUG = False
if not SECRET_KEY or len(SECRET_KEY) < 50:  # noqa: F405
    raise ImproperlyConfigured("FLOTILLA_SECRET_KEY must be set to at least 50 random characters")
if not FLOTILLA_ENCRYPTION_KEYS:  # noqa: F405
    raise ImproperlyConfigured("FLOTILLA_ENCRYPTION_KEYS must name at least one Fernet key")

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_SSL_REDIRECT = env_bool("FLOTILLA_SSL_REDIRECT", True)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_HSTS_SECONDS = env_int("FLOTILLA_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = env_bool("FLOTILLA_HSTS_PRELOAD", True)
