"""Writes of the orgs app: one transaction each, audited, side effects after commit."""
