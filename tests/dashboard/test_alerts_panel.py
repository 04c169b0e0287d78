"""Open alerts on the dashboard, acknowledged from it."""

from __future__ import annotations

import html

import pytest
from django.test import Client

from perfmonitor.models import PerformanceAlert
from tests.dashboard.alert_helpers import change_an_alert_state
from tests.dashboard.conftest import OVERVIEW

pytestmark = pytest.mark.django_db


@pytest.fixture
def firing(db) -> PerformanceAlert:
    return change_an_alert_state()


def _csrf_client(user) -> tuple[Client, str]:  # type: ignore[no-untyped-def]
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get(OVERVIEW)
    return client, client.cookies["csrftoken"].value


def test_the_alerts_panel_lists_the_firing_alert_with_an_acknowledge_button(client, responder,
                                                                           firing):
    client.force_login(responder)
    body = client.get(f"{OVERVIEW}panel/alerts/").content.decode()
    assert f'data-alert="{firing.pk}"' in body
    assert html.escape(firing.message) in body
    assert "firing" in body and "Acknowledge" in body


def test_the_open_alerts_card_counts_the_firing_alert(client, viewer, firing):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}panel/cards/").content.decode()
    assert 'data-card="open_alerts"' in body
    assert '<span class="pm-value">1</span>' in body


def test_a_responder_acknowledges_from_the_panel_with_htmx(responder, firing):
    client, token = _csrf_client(responder)
    response = client.post(f"{OVERVIEW}alert/{firing.pk}/acknowledge/", HTTP_HX_REQUEST="true",
                           HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="pm-panel-alerts"' in body and "Acknowledged." in body
    assert f'data-alert="{firing.pk}" data-acknowledged="true"' in body
    firing.refresh_from_db()
    assert firing.acknowledged and firing.acknowledged_by == responder


def test_acknowledging_twice_says_who_did_it_first(responder, firing):
    client, token = _csrf_client(responder)
    url = f"{OVERVIEW}alert/{firing.pk}/acknowledge/"
    client.post(url, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token)
    body = client.post(url, HTTP_HX_REQUEST="true", HTTP_X_CSRFTOKEN=token).content.decode()
    assert "Already acknowledged by responder" in body


def test_without_javascript_the_form_posts_and_returns_to_the_overview(responder, firing):
    client, token = _csrf_client(responder)
    response = client.post(f"{OVERVIEW}alert/{firing.pk}/acknowledge/?range=6h",
                           {"csrfmiddlewaretoken": token})
    assert response.status_code == 302 and response["Location"] == f"{OVERVIEW}?range=6h"
    firing.refresh_from_db()
    assert firing.acknowledged
    assert "Acknowledged." in client.get(response["Location"]).content.decode()  # a message


def test_viewing_is_not_enough_to_acknowledge(viewer, firing):
    client, token = _csrf_client(viewer)
    response = client.post(f"{OVERVIEW}alert/{firing.pk}/acknowledge/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 403
    firing.refresh_from_db()
    assert not firing.acknowledged
    body = client.get(f"{OVERVIEW}panel/alerts/").content.decode()
    assert "pm-ack-button" not in body


def test_acknowledging_without_the_csrf_token_is_refused(responder, firing):
    client, _ = _csrf_client(responder)
    assert client.post(f"{OVERVIEW}alert/{firing.pk}/acknowledge/").status_code == 403
    firing.refresh_from_db()
    assert not firing.acknowledged


def test_acknowledging_an_unknown_alert_is_a_404(responder):
    client, token = _csrf_client(responder)
    response = client.post(f"{OVERVIEW}alert/not-a-uuid/acknowledge/", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 404


def test_the_alert_page_shows_its_timeline(client, responder, firing):
    client.force_login(responder)
    body = client.get(f"{OVERVIEW}alert/{firing.pk}/").content.decode()
    assert html.escape(firing.message) in body
    assert "firing" in body
    assert 'data-stat="acknowledged">no<' in body


@pytest.mark.parametrize("user", ["staff_without_permission", None])
def test_the_alert_page_is_refused_to_others(client, request, firing, user):
    if user:
        client.force_login(request.getfixturevalue(user))
    assert client.get(f"{OVERVIEW}alert/{firing.pk}/").status_code in (302, 403)


def test_the_alert_page_shows_each_delivery_attempt(client, responder):
    """The in-app channel delivers through the outbox; the page lists the attempt."""
    from datetime import timedelta

    from django.utils import timezone

    from perfmonitor.alerts import clock
    from perfmonitor.alerts.outbox.delivery import deliver
    from perfmonitor.models.notifications import AlertNotification, NotificationChannel
    from tests.dashboard.alert_helpers import bundle_rule

    rule = bundle_rule()
    rule.group_wait_seconds = 0
    rule.save()
    rule.channels.add(NotificationChannel.objects.create(name="Dashboard in-app", type="in_app"))
    firing = change_an_alert_state("/pricing/")
    notification = AlertNotification.objects.get(alert=firing)
    with clock.use_clock(lambda: timezone.now() + timedelta(minutes=2)):
        deliver(notification.pk)
    client.force_login(responder)
    body = client.get(f"{OVERVIEW}alert/{firing.pk}/").content.decode()
    assert "Dashboard in-app" in body
    assert "Delivered" in body
    assert "notification to Dashboard in-app, attempt 1" in body  # on the timeline too


def test_the_alert_page_sums_up_the_windows_alerts(client, responder, firing):
    client.force_login(responder)
    body = client.get(f"{OVERVIEW}alert/{firing.pk}/?range=24h").content.decode()
    assert "All alerts in the last 24 hours:" in body
