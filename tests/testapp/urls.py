from django.urls import path, re_path

from tests.testapp import views

urlpatterns = [
    path("capture/courses/<int:pk>/", views.course_detail, name="capture-course"),
    path("capture/async/courses/<int:pk>/", views.async_course, name="capture-async-course"),
    path("capture/async/gather/", views.async_gather, name="capture-async-gather"),
    path("capture/boom/", views.boom, name="capture-boom"),
    path("capture/async/boom/", views.async_boom, name="capture-async-boom"),
    path("capture/missing/", views.missing, name="capture-missing"),
    path("capture/lessons/", views.lessons_n_plus_one, name="capture-lessons"),
    path("capture/queries/<int:n>/", views.many_queries, name="capture-queries"),
    path("capture/stream/", views.stream, name="capture-stream"),
    path("capture/stream/broken/", views.broken_stream, name="capture-broken-stream"),
    path("capture/async/stream/", views.async_stream, name="capture-async-stream"),
    path("capture/search/", views.search, name="capture-search"),
    path("capture/plain/", views.plain, name="capture-plain"),
    path("capture/sleepy/", views.sleepy, name="capture-sleepy"),
    path("capture/ignored/", views.ignored, name="capture-ignored"),
    re_path(r"^capture/archive/(?P<year>[0-9]{4})/$", views.archive, name="capture-archive"),
]
