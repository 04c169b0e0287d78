from django.urls import path

from demo_project.lms.views import accounts, api, booking, catalog, onboarding, reports

app_name = "lms"

urlpatterns = [
    path("", catalog.home, name="home"),
    path("courses/", catalog.course_list, name="course-list"),
    path("courses/<slug:slug>/", catalog.course_detail, name="course-detail"),
    path("classes/", catalog.class_list, name="class-list"),
    path("classes/<int:pk>/", catalog.class_detail, name="class-detail"),
    path("classes/<int:pk>/book/", booking.book_class, name="book-class"),
    path("bookings/<int:pk>/checkout/", booking.checkout, name="checkout"),
    path("bookings/<int:pk>/cancel/", booking.cancel_booking, name="cancel-booking"),
    path("payments/<str:reference>/receipt/", booking.receipt, name="receipt"),
    path("lessons-n-plus-one/", catalog.lessons_n_plus_one, name="lessons-n-plus-one"),
    path("login/", accounts.LoginView.as_view(), name="login"),
    path("logout/", accounts.LogoutView.as_view(), name="logout"),
    path("register/", accounts.register, name="register"),
    path("register/profile/", accounts.register_profile, name="register-profile"),
    path("register/welcome/", accounts.register_welcome, name="register-welcome"),
    path("dashboard/", accounts.dashboard, name="dashboard"),
    path("teach/", onboarding.start, name="onboarding"),
    path("teach/done/", onboarding.done, name="onboarding-done"),
    path("teach/<slug:page>/", onboarding.page, name="onboarding-page"),
    path("reports/", reports.report_page, name="reports"),
    path("reports/slow/", reports.slow_report, name="slow-report"),
    path("reports/bookings.csv", reports.bookings_csv, name="bookings-csv"),
    path("api/courses/", api.courses, name="api-courses"),
]
