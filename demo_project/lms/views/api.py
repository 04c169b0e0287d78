"""A small JSON API, served by an async view (the front end's course picker uses it)."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from demo_project.lms.queries import course_catalog

MAX_LIMIT = 100


async def courses(request: HttpRequest) -> JsonResponse:
    try:
        limit = int(request.GET.get("limit", "20"))
    except ValueError:
        return JsonResponse({"error": "limit must be a whole number"}, status=400)
    if not 1 <= limit <= MAX_LIMIT:
        return JsonResponse({"error": f"limit must be between 1 and {MAX_LIMIT}"}, status=400)
    queryset = course_catalog()
    subject = request.GET.get("subject", "").strip()
    if subject:
        queryset = queryset.filter(subject__iexact=subject)
    items = [{
        "slug": course.slug,
        "title": course.title,
        "subject": course.subject,
        "level": course.level,
        "price": str(course.price),
        "teacher": course.teacher.name,
        "upcoming_classes": course.upcoming_count,
        "next_class": course.next_class.isoformat() if course.next_class else None,
        "url": course.get_absolute_url(),
    } async for course in queryset[:limit]]
    return JsonResponse({"count": len(items), "results": items})
