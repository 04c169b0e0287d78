from django.apps import AppConfig


class LmsConfig(AppConfig):
    name = "demo_project.lms"
    label = "lms"
    verbose_name = "Demo LMS"
    default_auto_field = "django.db.models.BigAutoField"
