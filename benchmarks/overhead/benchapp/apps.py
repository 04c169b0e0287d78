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
        settle_from_environment()  # BENCH_GC_SETTLE: paired.py, every profile


def settle_from_environment() -> None:
    """``BENCH_GC_SETTLE=1``: SIGURG makes the process run a full garbage collection.

    paired.py sends it to every worker of both servers after their warm-up, so that
    the one full collection that start-up leaves due (the imports of a process's
    first minutes: a monitor's first flush loads its writer's modules) is paid before
    the measured windows, not in one of them, whichever the profile.
    """
    import gc
    import os
    import signal

    if os.environ.get("BENCH_GC_SETTLE") == "1":
        signal.signal(signal.SIGURG, lambda *_: gc.collect())


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
