"""ASGI entry point: HTTP through Django, websockets through Channels.

Websockets get the session user (AuthMiddlewareStack) and have their Origin checked against
ALLOWED_HOSTS at the handshake; consumers resolve the org themselves, since the tenant
middleware does not run for websockets.
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.host")
# One connection pool per web process (see config.env.database_from_url).
os.environ.setdefault("FLOTILLA_DB_POOL", "1")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from observability.routing import websocket_urlpatterns  # noqa: E402

# Everything loaded so far (Django, the apps, the Kubernetes and cloud clients: hundreds of
# thousands of objects) lives as long as the process. Frozen, the cyclic garbage collector stops
# walking it on every full collection, which otherwise stalled a request for 100-200 ms now and
# then (bench/api_latency.py: p99 of an in-process list 182 ms -> 44 ms).
gc.freeze()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
