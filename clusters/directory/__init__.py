"""The staff directory: a small public-schema summary of every org's clusters and operations.

Each org keeps its clusters and operations in its own schema; staff need one list across orgs
that costs the same whatever the number of orgs. The services keep these entries in step
(`services.sync_cluster` / `sync_operation`, called after commit from
`clusters.services.events.cluster_changed`); `manage.py rebuild_directory` refills them.
"""
