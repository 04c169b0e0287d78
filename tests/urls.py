from django.contrib import admin
from django.urls import include, path

from tests.testapp import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("perfmonitor/", include("perfmonitor.urls")),
    path("courses/<int:pk>/", views.course_detail, name="course-detail"),
    path("async/courses/<int:pk>/", views.async_course, name="async-course"),
    path("boom/", views.boom, name="boom"),
    path("lessons/", views.lessons_n_plus_one, name="lessons"),
    path("stream/", views.stream, name="stream"),
    path("plain/", views.plain, name="plain"),
    path("browser-tests/", include("tests.browser.urls")),
    path("", include("tests.testapp.urls")),
]
