from django.apps import AppConfig


class BenchAppConfig(AppConfig):
    name = "benchapp"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from benchapp import gcstats
        from benchapp.diagnose import apply_from_environment

        apply_from_environment()  # BENCH_PERFMONITOR_DIAG: diagnostics only
        gcstats.install_from_environment()  # BENCH_GC_STATS: diagnostics only
        idle_thread_from_environment()  # BENCH_IDLE_THREAD: diagnostics only


def idle_thread_from_environment() -> None:
    """Diagnostics: ``BENCH_IDLE_THREAD=<profile>`` starts, in that profile's processes,
    one thread that only sleeps (waking once a second, as an idle flusher does), to see
    what a second thread alone costs the thread that serves requests."""
    import os
    import threading

    if os.environ.get("BENCH_IDLE_THREAD") != os.environ.get("BENCH_PROFILE", "bare"):
        return
    stop = threading.Event()

    def sleep() -> None:
        while not stop.wait(1.0):
            pass

    threading.Thread(target=sleep, name="bench-idle", daemon=True).start()
