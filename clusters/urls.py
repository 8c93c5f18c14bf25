"""Portal pages of the clusters app, under /o/<org-slug>/clusters/."""

from __future__ import annotations

from django.urls import URLPattern, path

from clusters import views

app_name = "clusters"
urlpatterns: list[URLPattern] = [
    path("", views.cluster_list, name="list"),
    path("table/", views.cluster_table, name="table"),
    path("new/", views.cluster_create, name="create"),
    path("new/options/", views.create_options, name="create_options"),
    path("import/", views.cluster_import, name="import"),
    path("providers/", views.providers, name="providers"),
    path("providers/fields/", views.provider_fields, name="provider_fields"),
    path("providers/<int:pk>/delete/", views.provider_delete, name="provider_delete"),
    path("operations/<int:pk>/cancel/", views.operation_cancel, name="operation_cancel"),
    path("operations/<int:pk>/retry/", views.operation_retry, name="operation_retry"),
    path("<int:pk>/", views.cluster_detail, name="detail"),
    path("<int:pk>/live/", views.cluster_live, name="live"),
    path("<int:pk>/kubeconfig/", views.kubeconfig, name="kubeconfig"),
    path("<int:pk>/upgrade/", views.cluster_upgrade, name="upgrade"),
    path("<int:pk>/delete/", views.cluster_delete, name="delete"),
    path("<int:pk>/pools/add/", views.pool_add, name="pool_add"),
    path("<int:pk>/pools/<int:pool_pk>/scale/", views.pool_scale, name="pool_scale"),
    path("<int:pk>/pools/<int:pool_pk>/remove/", views.pool_remove, name="pool_remove"),
]
