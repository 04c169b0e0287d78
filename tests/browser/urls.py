from django.urls import path

from tests.browser import pages

urlpatterns = [
    path("fast/", pages.fast_page),
    path("slow/", pages.slow_page),
    path("shift/", pages.shifting_page),
    path("data/<int:pk>/", pages.lesson_data),
    path("slow-image/", pages.slow_image),
    path("react/", pages.react_page),
    path("vendor/<str:name>", pages.react_vendor),
]
