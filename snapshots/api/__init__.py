"""The REST API of snapshots, restores and storage locations (/api/v1/snapshots/)."""
