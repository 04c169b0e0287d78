"""A realistic, deterministic LMS data set, written with bulk_create.

Every object has a natural key (username, email, slug, class code, payment
reference), and its attributes come from a random generator seeded with that
key, so seeding twice creates nothing the second time. Class sessions are laid
out over a window around today (45 days back, 30 ahead); seeding on a later day
adds the new days' classes and keeps the old ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone

from demo_project.lms.models import Booking, ClassSession, Course, Payment, Student, Teacher

DEMO_PASSWORD = "learn-demo"
TEACHERS = 20
STUDENTS = 200
DAYS_BACK = 45
DAYS_AHEAD = 30
CLASS_CHANCE = 0.09  # per course and day: 40 courses x 75 days x 0.09 ~ 300 classes

FIRST = ["Ava", "Liam", "Mia", "Noah", "Zoe", "Omar", "Lena", "Ravi", "Chloe", "Mateo", "Sofia",
         "Yuki", "Amara", "Jonas", "Priya", "Diego", "Hana", "Felix", "Nora", "Tariq", "Elif",
         "Lucas", "Ines", "Kofi", "Maya", "Arjun", "Clara", "Emil", "Aisha", "Leo"]
LAST = ["Garcia", "Muller", "Okafor", "Tanaka", "Rossi", "Novak", "Silva", "Kim", "Dubois",
        "Haddad", "Jensen", "Kowalski", "Mendes", "Nguyen", "Patel", "Schmidt", "Ahmed", "Larsen",
        "Moreau", "Costa", "Fischer", "Ivanova", "Bauer", "Sato", "Lopez"]

# 20 topics: one teacher each, two courses each (a first course and a follow-up).
TOPICS = [
    ("Spanish", "Languages"), ("French", "Languages"), ("German", "Languages"),
    ("Japanese", "Languages"), ("Python", "Programming"), ("JavaScript", "Programming"),
    ("SQL", "Programming"), ("Web Design", "Design"), ("Illustration", "Design"),
    ("Guitar", "Music"), ("Piano", "Music"), ("Music Theory", "Music"), ("Algebra", "Maths"),
    ("Statistics", "Maths"), ("Data Analysis", "Data"), ("Machine Learning", "Data"),
    ("Creative Writing", "Writing"), ("Public Speaking", "Communication"),
    ("Photography", "Arts"), ("Personal Finance", "Business"),
]
ROOMS = ["Online", "Online", "Online", "Room 1.04", "Room 2.11", "Studio A", "Lab 3"]
HOURS = [8, 10, 12, 14, 16, 18, 19, 20]


@dataclass
class SeedResult:
    created: dict[str, int] = field(default_factory=dict)

    def add(self, name: str, count: int) -> None:
        self.created[name] = self.created.get(name, 0) + count

    @property
    def total(self) -> int:
        return sum(self.created.values())


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def _aware(day: date, hour: int) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, 0)),
                               timezone.get_current_timezone())


def seed(today: date | None = None) -> SeedResult:
    """Create whatever part of the demo data set is missing. Idempotent."""
    today = today or timezone.localdate()
    result = SeedResult()
    password = make_password(DEMO_PASSWORD)  # hashed once: 220 users, one PBKDF2 run
    with transaction.atomic():
        teachers = _teachers(password, result)
        students = _students(password, result)
        courses = _courses(teachers, result)
        sessions = _sessions(courses, today, result)
        _bookings_and_payments(sessions, students, result)
    return result


def _users(prefix: str, count: int, width: int, password: str,
           result: SeedResult) -> dict[str, object]:
    user_model = get_user_model()
    names = [f"{prefix}{i:0{width}d}" for i in range(1, count + 1)]
    existing = set(user_model.objects.filter(username__in=names).values_list("username", flat=True))
    new = []
    for username in names:
        if username in existing:
            continue
        rng = random.Random(username)
        first, last = rng.choice(FIRST), rng.choice(LAST)
        new.append(user_model(username=username, first_name=first, last_name=last,
                              email=f"{username}@example.org", password=password))
    user_model.objects.bulk_create(new)
    result.add("users", len(new))
    return {u.username: u for u in user_model.objects.filter(username__in=names)}


def _teachers(password: str, result: SeedResult) -> list[Teacher]:
    users = _users("teacher", TEACHERS, 2, password, result)
    existing = set(Teacher.objects.values_list("email", flat=True))
    new = []
    for i, (topic, _area) in enumerate(TOPICS[:TEACHERS], start=1):
        username = f"teacher{i:02d}"
        email = f"{username}@example.org"
        if email in existing:
            continue
        rng = random.Random(email)
        user = users[username]
        new.append(Teacher(
            user=user, name=f"{user.first_name} {user.last_name}", email=email, subject=topic,
            bio=f"Teaches {topic} for {rng.randint(3, 20)} years; loves small groups.",
            hourly_rate=Decimal(rng.randrange(30, 90)),
            rating=Decimal(str(round(rng.uniform(3.9, 5.0), 2))),
            joined_at=timezone.now() - timedelta(days=rng.randint(60, 900))))
    Teacher.objects.bulk_create(new)
    result.add("teachers", len(new))
    return list(Teacher.objects.filter(email__endswith="@example.org",
                                       email__startswith="teacher").order_by("email"))


def _students(password: str, result: SeedResult) -> list[Student]:
    users = _users("student", STUDENTS, 3, password, result)
    existing = set(Student.objects.values_list("email", flat=True))
    new = []
    for username, user in sorted(users.items()):
        email = f"{username}@example.org"
        if email in existing:
            continue
        rng = random.Random(email)
        new.append(Student(
            user=user, name=f"{user.first_name} {user.last_name}", email=email,
            level=rng.choice(Student.Level.values),
            interests=", ".join(rng.sample([t for t, _ in TOPICS], 2)),
            joined_at=timezone.now() - timedelta(days=rng.randint(1, 365))))
    Student.objects.bulk_create(new)
    result.add("students", len(new))
    return list(Student.objects.filter(email__endswith="@example.org",
                                       email__startswith="student").order_by("email"))


def _course_specs() -> list[tuple[str, str, str, str, int]]:
    specs = []
    for i, (topic, area) in enumerate(TOPICS):
        specs.append((f"{topic} for Beginners", area, Student.Level.BEGINNER, topic, i))
        follow_up = Student.Level.INTERMEDIATE if i % 2 else Student.Level.ADVANCED
        specs.append((f"{topic}: {follow_up.label} Workshop", area, follow_up, topic, i))
    return specs


def _courses(teachers: list[Teacher], result: SeedResult) -> list[Course]:
    from django.utils.text import slugify

    by_subject = {t.subject: t for t in teachers}
    existing = set(Course.objects.values_list("slug", flat=True))
    new = []
    for title, area, level, topic, _i in _course_specs():
        slug = slugify(title)
        if slug in existing or topic not in by_subject:
            continue
        rng = random.Random(slug)
        new.append(Course(
            title=title, slug=slug, subject=area, level=level, teacher=by_subject[topic],
            summary=f"A {level} course in {topic}: live practice in groups of up to 20.",
            description=(f"{title} takes you through {topic.lower()} step by step, with "
                         "exercises in every class, feedback from the teacher and "
                         "recordings to review afterwards."),
            price=Decimal(rng.choice([15, 19, 24, 29, 35, 45])),
            created_at=timezone.now() - timedelta(days=rng.randint(90, 700))))
    Course.objects.bulk_create(new)
    result.add("courses", len(new))
    slugs = [slugify(spec[0]) for spec in _course_specs()]
    return list(Course.objects.filter(slug__in=slugs).select_related("teacher").order_by("slug"))


def _sessions(courses: list[Course], today: date, result: SeedResult) -> list[ClassSession]:
    wanted = []
    for course in courses:
        for offset in range(-DAYS_BACK, DAYS_AHEAD):
            day = today + timedelta(days=offset)
            rng = random.Random(f"{course.slug}:{day.isoformat()}")
            if rng.random() >= CLASS_CHANCE:
                continue
            hour = rng.choice(HOURS)
            wanted.append(ClassSession(
                code=f"{course.slug[:24].upper()}-{day:%Y%m%d}-{hour:02d}",
                course=course, teacher=course.teacher, starts_at=_aware(day, hour),
                duration_minutes=rng.choice([45, 60, 60, 90]), capacity=rng.choice([8, 12, 16, 20]),
                room=rng.choice(ROOMS),
                status=ClassSession.Status.DONE if offset < 0 else ClassSession.Status.SCHEDULED))
    existing = set(ClassSession.objects.filter(code__in=[s.code for s in wanted])
                   .values_list("code", flat=True))
    new = [s for s in wanted if s.code not in existing]
    ClassSession.objects.bulk_create(new, batch_size=500)
    result.add("class sessions", len(new))
    # Only classes created now get seeded bookings: the older ones already have theirs.
    return list(ClassSession.objects.filter(code__in=[s.code for s in new])
                .select_related("course"))


def _bookings_and_payments(sessions: list[ClassSession], students: list[Student],
                           result: SeedResult) -> None:
    now = timezone.now()
    bookings: list[Booking] = []
    outcomes: list[list[str]] = []  # payment attempts per booking, in order
    for session in sessions:
        rng = random.Random(session.code)
        past = session.starts_at < now
        fill = rng.uniform(0.5, 0.95) if past else rng.uniform(0.1, 0.6)
        for student in rng.sample(students, min(int(session.capacity * fill), len(students))):
            booked_at = min(now, session.starts_at - timedelta(hours=rng.uniform(2, 24 * 21)))
            roll = rng.random()
            if roll < 0.06:
                status, attempts = Booking.Status.CANCELLED, ["refunded"]
            elif roll < 0.12 and not past:
                status, attempts = Booking.Status.PENDING, ["failed"] if rng.random() < .5 else []
            else:
                status = Booking.Status.CONFIRMED
                attempts = ["failed", "succeeded"] if rng.random() < 0.08 else ["succeeded"]
            bookings.append(Booking(student=student, session=session, status=status,
                                    created_at=booked_at))
            outcomes.append(attempts)
    Booking.objects.bulk_create(bookings, batch_size=500)
    result.add("bookings", len(bookings))

    payments = []
    for booking, attempts in zip(bookings, outcomes, strict=True):
        for n, outcome in enumerate(attempts):
            rng = random.Random(f"{booking.session.code}:{booking.student.email}:{n}")
            paid = booking.created_at + timedelta(minutes=rng.uniform(1, 20) + n * 5)
            payments.append(Payment(
                reference=f"PAY-{rng.getrandbits(48):012X}", booking=booking,
                student=booking.student, amount=booking.session.course.price,
                card_last4=f"{rng.randint(0, 9999):04d}", status=outcome,
                failure_reason="card_declined" if outcome == "failed" else "",
                created_at=paid, paid_at=paid if outcome != "failed" else None))
    Payment.objects.bulk_create(payments, batch_size=500)
    result.add("payments", len(payments))
