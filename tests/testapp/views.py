"""Views that exercise capture: sync, async, errors, streaming, N+1, secrets."""

import asyncio
import time

from asgiref.sync import sync_to_async
from django.db import connection
from django.http import Http404, HttpResponse, JsonResponse, StreamingHttpResponse

from tests.testapp.models import Course, Lesson

# What the streaming views have produced so far: proves nobody read them early.
STREAM_PROGRESS: list[int] = []


def course_detail(request, pk):
    course = Course.objects.filter(pk=pk).first()
    return JsonResponse({"title": course.title if course else None})


async def async_course(request, pk):
    course = await Course.objects.filter(pk=pk).afirst()
    await asyncio.sleep(0)
    return JsonResponse({"title": course.title if course else None})


async def async_gather(request):
    """Two ORM calls at once, each in its own worker thread."""
    def count():
        try:
            return Course.objects.count()
        finally:
            connection.close()  # these pool threads outlive the request

    counts = await asyncio.gather(sync_to_async(count, thread_sensitive=False)(),
                                  sync_to_async(count, thread_sensitive=False)())
    return JsonResponse({"counts": counts})


def boom(request):
    Course.objects.count()
    raise RuntimeError("view failed")


async def async_boom(request):
    await Course.objects.acount()
    raise ValueError("async view failed")


def missing(request):
    Course.objects.count()
    raise Http404("no such course")


def lessons_n_plus_one(request):
    titles = [lesson.course.title for lesson in Lesson.objects.all()]
    return JsonResponse({"titles": titles})


def many_queries(request, n):
    for i in range(n):
        Course.objects.filter(pk=i).exists()
    return JsonResponse({"ran": n})


def stream(request):
    def chunks():
        for i in range(3):
            STREAM_PROGRESS.append(i)
            yield f"chunk {i} {Course.objects.count()}\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def broken_stream(request):
    def chunks():
        yield "first\n"
        Course.objects.count()
        raise RuntimeError("stream failed")

    return StreamingHttpResponse(chunks(), content_type="text/plain")


async def async_stream(request):
    async def chunks():
        for i in range(3):
            STREAM_PROGRESS.append(i)
            yield f"chunk {i} {await Course.objects.acount()}\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def search(request):
    """Filters by what the client sent: query string, POST body, cookie, header."""
    term = (request.GET.get("token") or request.POST.get("password")
            or request.COOKIES.get("sessionkey") or request.headers.get("Authorization", ""))
    found = Course.objects.filter(title=term).count()
    with connection.cursor() as cursor:
        # Raw SQL with the value inlined, as careless host code does.
        quoted = term.replace("'", "''")
        cursor.execute(f"SELECT COUNT(*) FROM testapp_course WHERE title = '{quoted}'")
        cursor.fetchone()
    return JsonResponse({"found": found})


def plain(request):
    return HttpResponse("ok")


def archive(request, year):
    return HttpResponse(f"archive {year}")


SLEEPY_SECONDS = 0.03


def sleepy(request):
    time.sleep(SLEEPY_SECONDS)
    return HttpResponse("slept")


def ignored(request):
    Course.objects.count()
    return HttpResponse("not measured")


ignored.perfmonitor_ignore = True
