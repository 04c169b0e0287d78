from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = ("Everything the running demo needs after `migrate`, in one process: the admin "
            "user, the LMS data set and perfmonitor's periodic tasks.")

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--admin-username", default="admin")
        parser.add_argument("--admin-password", required=True)

    def handle(self, *args: Any, admin_username: str, admin_password: str,
               **options: Any) -> None:
        call_command("demo_admin", username=admin_username, password=admin_password,
                     stdout=self.stdout)
        call_command("seed_demo", stdout=self.stdout)
        call_command("perfmonitor_setup", stdout=self.stdout)
