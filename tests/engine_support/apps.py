"""A scripted kind of operation for the engine's tests (installed by config.settings.test only)."""

from django.apps import AppConfig


class EngineSupportConfig(AppConfig):
    """Registers the `scripted` job kind, so that workers started by the tests can run it."""

    name = "tests.engine_support"
    label = "engine_support"

    def ready(self) -> None:
        from clusters.engine import register_job
        from tests.engine_support.scripted import ScriptedJob

        register_job("scripted", ScriptedJob(), label="Scripted test job")
