from django.db import models


class Course(models.Model):
    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title


class Lesson(models.Model):
    course = models.ForeignKey(Course, on_delete=models.CASCADE, related_name="lessons")
    title = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.title
