"""Development: DEBUG on, fixed local-only secrets, everything else from base."""

from config.env import env_bool, env_list, env_str
from config.settings.base import *  # noqa: F403

DEBUG = env_bool("FLOTILLA_DEBUG", True)
# Insecure by design and only ever used on a developer's machine; prod refuses to start
# without real values.
SECRET_KEY = env_str("FLOTILLA_SECRET_KEY", "dev-insecure-7f1c1f0e6b2d4e1a9c3b5d7e9f0a1b2c")
FLOTILLA_ENCRYPTION_KEYS = env_list(
    "FLOTILLA_ENCRYPTION_KEYS", ["ZGV2LWluc2VjdXJlLWtleS0wMDAwMDAwMDAwMDAwMDA="]
)
ALLOWED_HOSTS = env_list("FLOTILLA_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
