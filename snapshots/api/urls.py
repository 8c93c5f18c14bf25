"""/api/v1/snapshots/... — snapshots at the root, storage locations and restores beside them."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from snapshots.api import views

router = SimpleRouter(use_regex_path=False)
router.register("locations", views.LocationViewSet, basename="location")
router.register("restores", views.RestoreViewSet, basename="restore")
router.register("", views.SnapshotViewSet, basename="snapshot")

app_name = "snapshots-api"
urlpatterns = router.urls
