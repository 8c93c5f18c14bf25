"""Writes of the snapshots app: storage locations, snapshots, restores, and their engine jobs."""
