from django.apps import AppConfig
from django.core.signals import setting_changed
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


class PerfmonitorConfig(AppConfig):
    name = "perfmonitor"
    verbose_name = "Performance"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from perfmonitor import checks  # noqa: F401  (registers the system checks)
        from perfmonitor.capture import query_hook, tasks_signals
        from perfmonitor.conf import reload_settings
        from perfmonitor.schedule import on_post_migrate

        setting_changed.connect(reload_settings, dispatch_uid="perfmonitor.reload_settings")
        connection_created.connect(query_hook.install, dispatch_uid="perfmonitor.query_hook")
        query_hook.install_on_existing_connections()
        tasks_signals.connect()
        post_migrate.connect(on_post_migrate, sender=self, dispatch_uid="perfmonitor.schedule")
