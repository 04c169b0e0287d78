from __future__ import annotations

from django.db import models

from perfmonitor.ids import uuid7


class JourneyStatus(models.TextChoices):
    IN_PROGRESS = "in_progress", "In progress"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    ABANDONED = "abandoned", "Abandoned"


class UserJourney(models.Model):
    """One journey instance; mirrors the original ``user_journeys`` table plus status."""

    id = models.UUIDField(primary_key=True, default=uuid7, editable=False)
    session_id = models.CharField(max_length=255, blank=True, default="")
    user_id = models.CharField(max_length=64, blank=True, default="")
    journey_id = models.CharField(max_length=255, unique=True)
    journey_type = models.CharField(max_length=50)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True, blank=True)
    duration = models.IntegerField(null=True, blank=True, help_text="Milliseconds.")
    completed = models.BooleanField(default=False)
    abandoned = models.BooleanField(default=False)
    abandonment_reason = models.TextField(blank=True, default="")
    steps = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    status = models.CharField(max_length=16, choices=JourneyStatus.choices,
                              default=JourneyStatus.IN_PROGRESS)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "perfmonitor_user_journeys"
        verbose_name = "user journey"
        ordering = ["-start_time"]
        indexes = [
            models.Index(fields=["journey_type", "start_time"], name="pm_journey_type_start"),
            models.Index(fields=["status", "start_time"], name="pm_journey_status_start"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_type} {self.journey_id} ({self.status})"
