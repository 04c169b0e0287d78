"""Fill the catalogue once with deterministic rows (idempotent)."""

import datetime
import random
from decimal import Decimal

from django.core.management.base import BaseCommand

from benchapp.models import Author, Book

COUNTRIES = ["NL", "DE", "FR", "GB", "US", "IN", "BR", "JP"]
WORDS = ["Blue", "River", "Silent", "Garden", "Winter", "Bright", "Stone", "Harbor", "Echo",
         "Lantern", "Meadow", "Copper"]


class Command(BaseCommand):
    help = "Create 200 authors and 2000 books for the overhead benchmark (once)."

    def handle(self, *args, **options) -> None:
        if Book.objects.exists():
            self.stdout.write("catalogue already seeded")
            return
        rng = random.Random(42)
        authors = Author.objects.bulk_create([
            Author(name=f"Author {i:03d}", country=rng.choice(COUNTRIES)) for i in range(200)
        ])
        start = datetime.date(1990, 1, 1)
        Book.objects.bulk_create([
            Book(title=f"{rng.choice(WORDS)} {rng.choice(WORDS)} {i}",
                 author=rng.choice(authors),
                 published=start + datetime.timedelta(days=rng.randrange(12000)),
                 price=Decimal(rng.randrange(500, 6000)) / 100)
            for i in range(2000)
        ], batch_size=500)
        self.stdout.write("seeded 200 authors, 2000 books")
