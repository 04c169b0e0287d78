"""Views that exercise capture: sync, async, errors, streaming, N+1."""

import asyncio

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from tests.testapp.models import Course, Lesson


def course_detail(request, pk):
    course = Course.objects.filter(pk=pk).first()
    return JsonResponse({"title": course.title if course else None})


async def async_course(request, pk):
    course = await Course.objects.filter(pk=pk).afirst()
    await asyncio.sleep(0)
    return JsonResponse({"title": course.title if course else None})


def boom(request):
    Course.objects.count()
    raise RuntimeError("view failed")


def lessons_n_plus_one(request):
    titles = [lesson.course.title for lesson in Lesson.objects.all()]
    return JsonResponse({"titles": titles})


def stream(request):
    def chunks():
        for i in range(3):
            yield f"chunk {i} {Course.objects.count()}\n"

    return StreamingHttpResponse(chunks(), content_type="text/plain")


def plain(request):
    return HttpResponse("ok")
