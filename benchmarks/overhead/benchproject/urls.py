import os

from benchapp import views
from django.conf import settings
from django.urls import include, path

urlpatterns = [
    path("one/", views.one_query, name="one_query"),
    path("ten/", views.ten_queries, name="ten_queries"),
]

# Each monitor's URLs, as its documentation tells a user to add them.
if settings.PROFILE == "perfmonitor":
    urlpatterns.append(path("perfmonitor/", include("perfmonitor.urls")))
elif settings.PROFILE == "django-silk":
    urlpatterns.append(path("silk/", include("silk.urls", namespace="silk")))
elif settings.PROFILE == "django-prometheus":
    urlpatterns.append(path("", include("django_prometheus.urls")))

if os.environ.get("BENCH_CALLGRIND_LIB"):  # instructions.py only: segment marks
    from benchapp import callgrind

    urlpatterns.append(path("_cg/mark/", callgrind.mark))
