"""Project wiring: settings, URLs, ASGI/WSGI entry points, task and event plumbing."""
