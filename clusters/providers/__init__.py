"""Provider drivers: one module per kind of provider behind the interface in `base`."""
