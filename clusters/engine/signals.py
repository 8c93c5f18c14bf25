"""Fan-out of the engine's moves, for whoever keeps a view of operations (the staff directory,
metrics): `operation_moved` is sent after the moving transaction commits, with `schema_name`,
`operation_id`, `from_status` and `to_status`. Receivers must not change the operation."""

from django.dispatch import Signal

operation_moved = Signal()
