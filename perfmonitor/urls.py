from django.urls import include, path

app_name = "perfmonitor"

urlpatterns = [
    path("api/v1/", include("perfmonitor.api.urls")),
]
