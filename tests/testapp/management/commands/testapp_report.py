from django.core.management.base import BaseCommand

from tests.testapp.models import Course, Lesson


class Command(BaseCommand):
    help = "A host command that runs queries (capture attributes them to command:testapp_report)."

    def handle(self, *args, **options):
        courses = Course.objects.count()
        lessons = Lesson.objects.count()
        self.stdout.write(f"{courses} courses, {lessons} lessons")
