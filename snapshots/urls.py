"""Portal pages of the snapshots app, under /o/<org-slug>/snapshots/."""

from __future__ import annotations

from django.urls import URLPattern, path

from snapshots.views import locations, restores, snapshots

app_name = "snapshots"
urlpatterns: list[URLPattern] = [
    path("", snapshots.snapshot_list, name="list"),
    path("table/", snapshots.snapshot_table, name="table"),
    path("clusters/<int:pk>/", snapshots.cluster_snapshots, name="cluster"),
    path("clusters/<int:pk>/table/", snapshots.cluster_table, name="cluster_table"),
    path("clusters/<int:pk>/new/", snapshots.snapshot_create, name="create"),
    path("<int:pk>/", snapshots.snapshot_detail, name="detail"),
    path("<int:pk>/live/", snapshots.snapshot_live, name="live"),
    path("<int:pk>/restores/", snapshots.snapshot_restores, name="restores"),
    path("<int:pk>/delete/", snapshots.snapshot_delete, name="delete"),
    path("<int:pk>/restore/", snapshots.snapshot_restore, name="restore"),
    path("restores/<int:pk>/", restores.restore_detail, name="restore_detail"),
    path("restores/<int:pk>/live/", restores.restore_live, name="restore_live"),
    path("restores/<int:pk>/items/", restores.restore_items, name="restore_items"),
    path("restores/<int:pk>/confirm/", restores.restore_confirm, name="restore_confirm"),
    path("locations/", locations.locations, name="locations"),
    path("locations/new/", locations.location_create, name="location_create"),
    path("locations/<int:pk>/check/", locations.location_check, name="location_check"),
    path("locations/<int:pk>/default/", locations.location_default, name="location_default"),
    path("locations/<int:pk>/delete/", locations.location_delete, name="location_delete"),
]
