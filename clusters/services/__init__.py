"""Writes of the clusters app: providers, clusters and pools, and the reconcile loop that runs them."""
