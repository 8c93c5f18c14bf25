"""URL map. Org pages live under /o/<org-slug>/ (no DNS needed); the API is org-scoped by token."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.permissions import AllowAny

from clusters import urls as clusters_urls
from config.metrics import metrics_view
from orgs import urls as orgs_urls
from orgs import views as orgs_views
from snapshots import urls as snapshots_urls

# Everything below /o/<org_slug>/ runs in that org's schema (orgs.middleware.OrgRoutingMiddleware).
org_patterns = [
    path("", include((orgs_urls.org_urlpatterns, "org"))),
    path("clusters/", include((clusters_urls.urlpatterns, "clusters"))),
    path("snapshots/", include((snapshots_urls.urlpatterns, "snapshots"))),
]

# No route under /api/ answers the API's JSON error body, not an HTML page.
handler404 = "orgs.api.errors.not_found"

urlpatterns = [
    # Before the admin's own routes: its sign-in shares the portal's rate limits.
    path("admin/login/", orgs_views.admin_login),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),
    path("api/v1/orgs/", include("orgs.api.urls")),
    path("api/v1/clusters/", include("clusters.api.urls")),
    path("api/v1/snapshots/", include("snapshots.api.urls")),
    path(
        "api/schema/",
        SpectacularAPIView.as_view(permission_classes=[AllowAny], authentication_classes=[]),
        name="api-schema",
    ),
    path("o/<slug:org_slug>/", include(org_patterns)),
    path("", include((orgs_urls.public_urlpatterns, "orgs"))),
]
