"""Web Vitals per device class: beacons through the collect API, read back filtered.

Phones on /courses/ load slowly, desktops fast; the device filter of the read API,
the dashboard summary and the dashboard pages must tell them apart, and the
unfiltered numbers must still cover every device.
"""

from __future__ import annotations

import pytest

from perfmonitor.analytics.vitals import vital_kind
from perfmonitor.models import MetricRollup
from tests.api.beacons import batch, post, vital

BASE = "/perfmonitor/api/v1/"
PHONE_UA = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/126.0.0.0 Mobile Safari/537.36")
PAGE = "https://lms.example.com/courses/"


def _page_loads(client, *, device: str | None, lcps: list[float], session: str,
                user_agent: str | None = None) -> None:
    for i, lcp in enumerate(lcps):
        events = [vital("LCP", lcp, id=f"{session}-lcp-{i}"),
                  vital("CLS", 0.01, id=f"{session}-cls-{i}"),
                  vital("INP", 90.0, id=f"{session}-inp-{i}")]
        fields = {"page": PAGE}
        if device:
            fields["device"] = device
        headers = {"HTTP_USER_AGENT": user_agent} if user_agent else {}
        response = post(client, batch(*events, session_id=f"{session}-{i}", **fields), **headers)
        assert response.status_code == 202, response.content


@pytest.fixture
def loads(db, client, flush):
    # Phones: told by the User-Agent, no device field. Desktops: the batch says so.
    _page_loads(client, device=None, lcps=[4800.0, 5200.0, 6100.0, 4500.0], session="phone",
                user_agent=PHONE_UA)
    _page_loads(client, device="desktop", lcps=[1200.0, 1400.0, 1100.0, 1300.0, 1250.0, 1500.0],
                session="desk")
    flush()


def test_each_vital_is_also_rolled_up_per_device_class(loads):
    counts = {kind: sum(MetricRollup.objects.filter(kind=kind, name="LCP")
                        .values_list("count", flat=True))
              for kind in ("vital", vital_kind("mobile"), vital_kind("desktop"),
                           vital_kind("tablet"))}
    assert counts == {"vital": 10, "vital:mobile": 4, "vital:desktop": 6, "vital:tablet": 0}


def test_the_read_api_filters_vitals_by_device(loads, staff_client):
    everyone = staff_client.get(BASE + "vitals", {"window": "1h"}).json()
    phones = staff_client.get(BASE + "vitals", {"window": "1h", "device": "mobile"}).json()
    desktops = staff_client.get(BASE + "vitals", {"window": "1h", "device": "desktop"}).json()
    assert everyone["site"]["vitals"]["LCP"]["samples"] == 10
    assert phones["device"] == "mobile" and phones["site"]["vitals"]["LCP"]["samples"] == 4
    assert phones["site"]["vitals"]["LCP"]["p75"] == pytest.approx(5200.0, rel=0.01)
    assert phones["site"]["assessment"]["status"] == "failed"
    assert desktops["site"]["vitals"]["LCP"]["samples"] == 6
    # p75 of six values by the sketch's rank rule: the fourth smallest
    assert desktops["site"]["vitals"]["LCP"]["p75"] == pytest.approx(1300.0, rel=0.01)
    assert desktops["site"]["assessment"]["status"] == "passed"
    pages = staff_client.get(BASE + "vitals/pages", {"window": "1h", "device": "mobile"}).json()
    assert [p["page"] for p in pages["pages"]] == ["/courses/"]
    assert pages["pages"][0]["vitals"]["LCP"]["samples"] == 4


def test_the_summary_applies_the_device_filter_and_says_where(loads, staff_client):
    data = staff_client.get(BASE + "summary", {"window": "1h", "device": "desktop"}).json()
    assert data["unsupported"] == []
    assert "Web Vitals" in data["scope"]["device"]
    assert data["vitals"][0]["vitals"]["LCP"]["samples"] == 6
    assert sum(p["count"] for p in data["trends"]["lcp_p75"]) == 6


def test_an_unknown_device_is_a_400_naming_it(db, staff_client):
    response = staff_client.get(BASE + "vitals", {"window": "1h", "device": "fridge"})
    assert response.status_code == 400 and "device" in response.json()


def test_the_dashboard_shows_the_devices_own_vitals(loads, client, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("ops", password="pw", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_dashboard"))
    client.force_login(user)
    overview = "/admin/perfmonitor/dashboard/"
    body = client.get(overview + "?range=1h&device=mobile").content.decode()
    assert "device = mobile" in body and "Not applied" not in body
    phones = client.get(overview + "panel/vitals/?range=1h&device=mobile").content.decode()
    desktops = client.get(overview + "panel/vitals/?range=1h&device=desktop").content.decode()
    assert "site, mobile" in phones and "site, desktop" in desktops
    page = client.get(overview + "page/?url=/courses/&range=1h&device=mobile").content.decode()
    assert "LCP" in page
