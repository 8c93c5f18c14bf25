"""Portal pages of the snapshots app, under /o/<org-slug>/snapshots/: snapshots, restores and the
org's storage locations (linked from its settings)."""
