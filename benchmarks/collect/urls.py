from django.urls import include, path

from benchmarks.collect import baseline

urlpatterns = [
    path("perfmonitor/", include("perfmonitor.urls")),
    path("baseline/collect", baseline.collect),
]
