"""Portal pages of the clusters app, under /o/<org-slug>/clusters/."""

from __future__ import annotations

from django.urls import URLPattern, path

from clusters.views import apps, clusters, create, providers

app_name = "clusters"
urlpatterns: list[URLPattern] = [
    path("", clusters.cluster_list, name="list"),
    path("table/", clusters.cluster_table, name="table"),
    path("new/", create.cluster_create, name="create"),
    path("new/options/", create.create_options, name="create_options"),
    path("import/", create.cluster_import, name="import"),
    path("providers/", providers.providers, name="providers"),
    path("providers/fields/", providers.provider_fields, name="provider_fields"),
    path("providers/<int:pk>/delete/", providers.provider_delete, name="provider_delete"),
    path(
        "providers/<int:pk>/refresh-catalogue/",
        providers.provider_refresh_catalogue,
        name="provider_refresh_catalogue",
    ),
    path("operations/<int:pk>/cancel/", clusters.operation_cancel, name="operation_cancel"),
    path("operations/<int:pk>/retry/", clusters.operation_retry, name="operation_retry"),
    path("apps/", apps.app_list, name="apps"),
    path("apps/table/", apps.app_table, name="app_table"),
    path("apps/new/", apps.app_create, name="app_create"),
    path("apps/<int:pk>/", apps.app_detail, name="app_detail"),
    path("apps/<int:pk>/live/", apps.app_live, name="app_live"),
    path("apps/<int:pk>/edit/", apps.app_edit, name="app_edit"),
    path("apps/<int:pk>/scale/", apps.app_scale, name="app_scale"),
    path("apps/<int:pk>/restart/", apps.app_restart, name="app_restart"),
    path("apps/<int:pk>/rollback/", apps.app_rollback, name="app_rollback"),
    path("apps/<int:pk>/delete/", apps.app_delete, name="app_delete"),
    path("apps/<int:pk>/pods/<str:pod>/delete/", apps.app_pod_delete, name="app_pod_delete"),
    path("<int:pk>/", clusters.cluster_detail, name="detail"),
    path("<int:pk>/apps/", apps.cluster_apps, name="cluster_apps"),
    path("<int:pk>/workloads/adopt/", apps.workload_adopt, name="workload_adopt"),
    path("<int:pk>/live/", clusters.cluster_live, name="live"),
    path("<int:pk>/kubeconfig/", clusters.kubeconfig, name="kubeconfig"),
    path("<int:pk>/upgrade/", clusters.cluster_upgrade, name="upgrade"),
    path("<int:pk>/delete/", clusters.cluster_delete, name="delete"),
    path("<int:pk>/pools/add/", clusters.pool_add, name="pool_add"),
    path("<int:pk>/pools/<int:pool_pk>/scale/", clusters.pool_scale, name="pool_scale"),
    path("<int:pk>/pools/<int:pool_pk>/remove/", clusters.pool_remove, name="pool_remove"),
]
