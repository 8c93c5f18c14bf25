"""Fan-out only: nothing here changes data."""
