from django.urls import include, path

urlpatterns = [path("perfmonitor/", include("perfmonitor.urls"))]
