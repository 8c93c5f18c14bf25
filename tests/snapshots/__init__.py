"""Tests of the snapshots app."""
