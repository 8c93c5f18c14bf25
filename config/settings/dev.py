"""Development on a developer's machine: the single-host settings with DEBUG on by default.

Secrets come from the generated install file like `scripts/run.sh`'s (config.settings.host), so
no key in the repository ever encrypts anything; static files are served from the source tree.
"""

from config.env import env_bool
from config.settings.host import *  # noqa: F403

DEBUG = env_bool("FLOTILLA_DEBUG", True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
