"""/api/v1/clusters/... — clusters at the root, provider accounts, operations and apps beside them."""

from __future__ import annotations

from rest_framework.routers import SimpleRouter

from clusters.api import app_views, views

router = SimpleRouter(use_regex_path=False)
router.register("providers", views.ProviderAccountViewSet, basename="provider")
router.register("operations", views.OperationViewSet, basename="operation")
router.register("apps", app_views.AppViewSet, basename="app")
router.register("", views.ClusterViewSet, basename="cluster")

app_name = "clusters-api"
urlpatterns = router.urls
