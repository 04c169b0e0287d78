from django.contrib import admin

from demo_project.lms.models import (
    Booking,
    ClassSession,
    Course,
    Payment,
    Report,
    Student,
    Teacher,
    TeacherOnboarding,
)


@admin.register(Teacher)
class TeacherAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "subject", "hourly_rate", "rating", "active"]
    list_filter = ["active", "subject"]
    search_fields = ["name", "email"]


@admin.register(Student)
class StudentAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "level", "joined_at"]
    list_filter = ["level"]
    search_fields = ["name", "email"]
    raw_id_fields = ["user"]


@admin.register(Course)
class CourseAdmin(admin.ModelAdmin):
    list_display = ["title", "subject", "level", "teacher", "price", "published"]
    list_filter = ["published", "level", "subject"]
    list_select_related = ["teacher"]
    search_fields = ["title", "slug"]
    prepopulated_fields = {"slug": ["title"]}


@admin.register(ClassSession)
class ClassSessionAdmin(admin.ModelAdmin):
    list_display = ["code", "course", "teacher", "starts_at", "capacity", "status"]
    list_filter = ["status", ("starts_at", admin.DateFieldListFilter)]
    list_select_related = ["course", "teacher"]
    search_fields = ["code", "course__title"]
    date_hierarchy = "starts_at"


@admin.register(Booking)
class BookingAdmin(admin.ModelAdmin):
    list_display = ["id", "student", "session", "status", "created_at"]
    list_filter = ["status"]
    list_select_related = ["student", "session"]
    raw_id_fields = ["student", "session"]


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ["reference", "student", "amount", "currency", "status", "created_at"]
    list_filter = ["status", "method"]
    list_select_related = ["student"]
    search_fields = ["reference"]
    raw_id_fields = ["booking", "student"]


@admin.register(TeacherOnboarding)
class TeacherOnboardingAdmin(admin.ModelAdmin):
    list_display = ["name", "email", "subject", "stage", "created_at", "completed_at"]
    list_filter = ["stage"]
    search_fields = ["name", "email"]


@admin.register(Report)
class ReportAdmin(admin.ModelAdmin):
    list_display = ["kind", "requested_by", "row_count", "duration_ms", "created_at"]
    list_filter = ["kind"]
