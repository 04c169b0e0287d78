from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("perfmonitor/", include("perfmonitor.urls")),
    path("", include("demo_project.lms.urls")),
]
