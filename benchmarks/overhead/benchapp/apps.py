from django.apps import AppConfig


class BenchAppConfig(AppConfig):
    name = "benchapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from benchapp.diagnose import apply_from_environment

        apply_from_environment()  # BENCH_PERFMONITOR_DIAG: diagnostics only
