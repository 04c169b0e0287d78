from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import UserCreationForm

from demo_project.lms.models import Report, Student, TeacherOnboarding

# Test card numbers, as payment providers document them: this one is always declined.
DECLINED_CARD = "4000000000000002"


class RegistrationForm(UserCreationForm):
    name = forms.CharField(max_length=120)
    email = forms.EmailField()

    class Meta(UserCreationForm.Meta):
        model = get_user_model()
        fields = ("username", "name", "email")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].lower()
        if Student.objects.filter(email=email).exists():
            raise forms.ValidationError("A student with this email already exists.")
        return email


class StudentProfileForm(forms.ModelForm):
    class Meta:
        model = Student
        fields = ["level", "interests"]
        help_texts = {"interests": "Subjects you would like to learn, comma separated."}


class CourseFilterForm(forms.Form):
    q = forms.CharField(required=False, max_length=80, label="Search")
    subject = forms.CharField(required=False, max_length=80)
    level = forms.ChoiceField(required=False, choices=[("", "Any level"), *Student.Level.choices])


class PaymentForm(forms.Form):
    cardholder = forms.CharField(max_length=120)
    card_number = forms.CharField(max_length=23)
    expiry = forms.CharField(max_length=5, help_text="MM/YY")
    cvc = forms.CharField(max_length=4)

    def clean_card_number(self) -> str:
        digits = re.sub(r"[\s-]", "", self.cleaned_data["card_number"])
        if not digits.isdigit() or not 13 <= len(digits) <= 19:
            raise forms.ValidationError("Enter a card number of 13 to 19 digits.")
        if not _luhn_ok(digits):
            raise forms.ValidationError("This card number is not valid.")
        return digits

    def clean_expiry(self) -> str:
        value = self.cleaned_data["expiry"]
        if not re.fullmatch(r"(0[1-9]|1[0-2])/\d\d", value):
            raise forms.ValidationError("Use the MM/YY format.")
        return value

    def clean_cvc(self) -> str:
        value = self.cleaned_data["cvc"]
        if not re.fullmatch(r"\d{3,4}", value):
            raise forms.ValidationError("Three or four digits.")
        return value


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


class OnboardingProfileForm(forms.ModelForm):
    class Meta:
        model = TeacherOnboarding
        fields = ["name", "email", "subject"]


class OnboardingQualificationsForm(forms.ModelForm):
    class Meta:
        model = TeacherOnboarding
        fields = ["qualifications", "years_experience"]

    def clean_qualifications(self) -> str:
        value = self.cleaned_data["qualifications"].strip()
        if len(value) < 10:
            raise forms.ValidationError("Describe your qualifications in a sentence or two.")
        return value


class OnboardingAvailabilityForm(forms.ModelForm):
    class Meta:
        model = TeacherOnboarding
        fields = ["weekly_hours"]

    def clean_weekly_hours(self) -> int:
        value = self.cleaned_data["weekly_hours"]
        if not 1 <= value <= 40:
            raise forms.ValidationError("Between 1 and 40 hours a week.")
        return value


class OnboardingAgreementForm(forms.ModelForm):
    class Meta:
        model = TeacherOnboarding
        fields = ["agreed_to_terms"]

    def clean_agreed_to_terms(self) -> bool:
        if not self.cleaned_data["agreed_to_terms"]:
            raise forms.ValidationError("You must accept the teaching agreement.")
        return True


class ReportForm(forms.Form):
    kind = forms.ChoiceField(
        choices=[c for c in Report.Kind.choices if c[0] != Report.Kind.LEAGUE],
        initial=Report.Kind.REVENUE)
    days = forms.IntegerField(min_value=1, max_value=365, initial=90)

    def as_parameters(self) -> dict[str, Any]:
        return {"kind": self.cleaned_data["kind"], "days": self.cleaned_data["days"]}
