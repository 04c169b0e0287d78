"""The two measured views: one query, and ten different queries (no N+1 pattern).

Both return deterministic JSON, so run.py can check every profile answers the
same bytes as ``bare``.
"""

import datetime

from django.db.models import Avg
from django.http import HttpRequest, JsonResponse

from benchapp.models import Author, Book


def one_query(request: HttpRequest) -> JsonResponse:
    books = Book.objects.select_related("author").order_by("id")[:20]
    return JsonResponse({"books": [
        {"id": b.id, "title": b.title, "author": b.author.name, "price": str(b.price)}
        for b in books
    ]})


def ten_queries(request: HttpRequest) -> JsonResponse:
    # Ten different statements of the kind a detail page runs: indexed lookups,
    # small slices, one count and one aggregate on an indexed subset.
    author = Author.objects.get(pk=1)
    books = Book.objects.filter(author=author)
    data = {
        "author": author.name,
        "titles": list(books.order_by("id").values_list("title", flat=True)[:5]),
        "book_count": books.count(),
        "avg_price": str(books.aggregate(avg=Avg("price"))["avg"]),
        "latest": list(Book.objects.select_related("author").order_by("-published", "id")
                       .values_list("title", "author__name")[:10]),
        "same_country": list(Author.objects.filter(country=author.country).order_by("id")
                             .values_list("name", flat=True)[:5]),
        "similar": list(Book.objects.filter(title__startswith="Blue River").order_by("id")
                        .values_list("id", flat=True)[:5]),
        "has_book_10": Book.objects.filter(pk=10).exists(),
        "recent_count": Book.objects.filter(published__gte=datetime.date(2020, 1, 1)).count(),
        "neighbours": list(Author.objects.filter(pk__in=[2, 3, 4]).order_by("id")
                           .values_list("name", flat=True)),
    }
    return JsonResponse(data)
