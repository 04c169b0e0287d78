from celery import shared_task

from tests.testapp.models import Course


@shared_task(name="testapp.count_courses")
def count_courses() -> int:
    Course.objects.filter(title__startswith="A").count()
    return Course.objects.count()


@shared_task(name="testapp.failing_task")
def failing_task() -> None:
    Course.objects.count()
    raise LookupError("task failed")


@shared_task(name="perfmonitor.testapp_own_work")
def own_work() -> int:
    """Named like perfmonitor's own tasks: its queries must not be captured."""
    return Course.objects.count()
