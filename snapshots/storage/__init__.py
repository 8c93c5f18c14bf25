"""Storage locations through libcloud's storage drivers: one org's area of one location."""

from snapshots.storage.config import StoreConfig, check_key, known_drivers, local_root, validate_config
from snapshots.storage.errors import ObjectMissing, StorageRefused, StorageUnavailable
from snapshots.storage.stores import LocalStore, Store, check_store, open_store

__all__ = [
    "LocalStore",
    "ObjectMissing",
    "StorageRefused",
    "StorageUnavailable",
    "Store",
    "StoreConfig",
    "check_key",
    "check_store",
    "known_drivers",
    "local_root",
    "open_store",
    "validate_config",
]
