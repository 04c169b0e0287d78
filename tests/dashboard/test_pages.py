"""An admin opens the dashboard: who gets in, and that the numbers are the seeded ones."""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import pytest
from django.test import Client

from perfmonitor.capture import writer
from perfmonitor.models import MetricRollup
from tests.dashboard.conftest import OVERVIEW

pytestmark = pytest.mark.django_db

PANELS = ["score", "cards", "vitals", "alerts", "trends", "routes", "journeys", "bundles",
          "insights"]
ROUTE = "/courses/<int:pk>/"


def _course_query_fingerprint() -> str:
    return MetricRollup.objects.filter(kind="query", dimension=f"GET {ROUTE}").values_list(
        "name", flat=True).first()


def _pages() -> list[str]:
    return [OVERVIEW,
            *[f"{OVERVIEW}panel/{name}/" for name in PANELS],
            f"{OVERVIEW}route/?name={quote(ROUTE)}",
            f"{OVERVIEW}query/{{fingerprint}}/",
            f"{OVERVIEW}page/?url=/courses/",
            f"{OVERVIEW}journey/login/"]


@pytest.mark.parametrize("path", _pages())
def test_every_page_and_partial_opens_for_staff_with_the_permission(client, viewer, traffic,
                                                                   vitals, path):
    client.force_login(viewer)
    response = client.get(path.format(fingerprint=_course_query_fingerprint()))
    assert response.status_code == 200, response.content[:500]
    body = response.content.decode()
    assert "could not be loaded" not in body


@pytest.mark.parametrize("path", _pages())
def test_staff_without_the_permission_is_refused(client, staff_without_permission, path):
    client.force_login(staff_without_permission)
    assert client.get(path.format(fingerprint="abc")).status_code == 403


@pytest.mark.parametrize("path", _pages())
def test_anonymous_visitors_are_sent_to_the_login_page(client, db, path):
    response = client.get(path.format(fingerprint="abc"))
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_the_app_index_links_the_dashboard_only_for_those_who_may_see_it(
        client, viewer, staff_without_permission):
    client.force_login(viewer)
    assert OVERVIEW in client.get("/admin/perfmonitor/").content.decode()
    assert OVERVIEW in client.get("/admin/").content.decode()
    client.force_login(staff_without_permission)
    assert OVERVIEW not in client.get("/admin/").content.decode()


def test_the_overview_is_an_admin_page_with_breadcrumbs_and_the_admin_theme(client, viewer):
    client.force_login(viewer)
    body = client.get(OVERVIEW).content.decode()
    assert 'class="breadcrumbs"' in body
    assert 'href="/admin/perfmonitor/">Performance</a>' in body
    assert "admin/css/base.css" in body  # the admin's stylesheet, dark mode included
    assert "django_htmx/htmx-2.min.js" in body  # htmx from django-htmx, no CDN
    assert "//cdn" not in body and "https://" not in body


def _cell(body: str, row_attr: str, column: int) -> str:
    row = re.search(rf"<tr {re.escape(html.escape(row_attr, quote=False))}[^>]*>(.*?)</tr>",
                    body, re.S)
    assert row, f"no row {row_attr}"
    cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row.group(1), re.S)
    return re.sub(r"<[^>]+>", "", cells[column]).strip()


def _number(text: str) -> float:
    return float(re.search(r"-?[\d,]+(\.\d+)?", text).group(0).replace(",", ""))


def test_top_routes_show_the_seeded_requests(client, viewer, traffic):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}panel/routes/").content.decode()
    assert _cell(body, f'data-route="{ROUTE}"', 2) == str(traffic["course_views"])
    assert _cell(body, 'data-route="/boom/"', 5) == "100.00 %"


def test_cards_show_throughput_and_error_rate_of_the_seeded_traffic(client, viewer, traffic):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}panel/cards/?range=1h").content.decode()
    error_card = re.search(r'data-card="error_rate".*?pm-value">([^<]+)<', body, re.S).group(1)
    assert _number(error_card) == pytest.approx(100 * 1 / 13, abs=0.01)
    rpm = re.search(r'data-card="throughput".*?pm-value">([^<]+)<', body, re.S).group(1)
    assert _number(rpm) == pytest.approx(13 / 60, abs=0.05)


def test_vitals_p75_match_the_seeded_values_within_the_sketch_accuracy(client, viewer, vitals):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}panel/vitals/").content.decode()
    # p75 of four values is the third (rank 0.75 * 3 = 2.25): 2300 ms, 150 ms, 0.05.
    assert _number(_cell(body, 'data-vital="LCP"', 1)) == pytest.approx(2300, rel=0.01)
    assert _number(_cell(body, 'data-vital="INP"', 1)) == pytest.approx(150, rel=0.01)
    assert _number(_cell(body, 'data-vital="CLS"', 1)) == pytest.approx(0.05, rel=0.02)
    assert _cell(body, 'data-vital="LCP"', 4) == "4"


def test_the_route_drill_down_counts_requests_and_queries(client, viewer, traffic):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}route/?name={quote(ROUTE)}&method=GET").content.decode()
    assert re.search(r'data-stat="count">12<', body)
    fingerprint = _course_query_fingerprint()
    assert _cell(body, f'data-fingerprint="{fingerprint}"', 2) == "12"
    assert _cell(body, f'data-fingerprint="{fingerprint}"', 3) == "1.0"
    assert "<svg" in body and "<rect" in body  # the latency histogram


def test_the_query_drill_down_shows_sql_without_values(client, viewer, traffic):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}query/{_course_query_fingerprint()}/").content.decode()
    assert "testapp_course" in body
    assert re.search(r'data-stat="count">12<', body)


def test_an_empty_window_says_so_instead_of_showing_zeros(client, viewer):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}panel/routes/").content.decode()
    assert "No data in this window." in body


@pytest.mark.parametrize("query,named", [("range=2h", "range"), ("device=fridge", "device"),
                                         ("route=" + "x" * 300, "route")])
def test_bad_controls_get_a_400_that_names_the_parameter(client, viewer, query, named):
    client.force_login(viewer)
    response = client.get(f"{OVERVIEW}?{query}")
    assert response.status_code == 400
    assert named in response.content.decode()


def test_a_drill_down_without_its_subject_is_a_400(client, viewer):
    client.force_login(viewer)
    response = client.get(f"{OVERVIEW}route/")
    assert response.status_code == 400 and b"name" in response.content


def test_an_unknown_panel_is_a_404(client, viewer):
    client.force_login(viewer)
    assert client.get(f"{OVERVIEW}panel/nope/").status_code == 404


def test_every_time_range_renders(client, viewer, traffic):
    client.force_login(viewer)
    for key in ("1h", "6h", "24h", "7d", "30d"):
        assert client.get(f"{OVERVIEW}?range={key}").status_code == 200


def test_csrf_protects_acknowledging(viewer):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(viewer)
    assert csrf_client.post(f"{OVERVIEW}alert/00000000-0000-0000-0000-000000000000/"
                            "acknowledge/").status_code == 403


def test_each_filter_says_which_panels_it_narrows(client, viewer, traffic):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}?device=mobile").content.decode()
    assert "Not applied" not in body
    assert "<strong>device = mobile</strong> narrows Web Vitals and the LCP trend" in body
    body = client.get(f"{OVERVIEW}?route=/boom/").content.decode()
    assert "<strong>route = /boom/</strong> narrows server numbers" in body


def test_the_route_filter_narrows_the_server_numbers(client, viewer, traffic):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}panel/routes/?route=/boom/").content.decode()
    assert 'data-route="/boom/"' in body
    assert "/courses/" not in body


def test_the_dashboards_own_requests_are_not_recorded_as_the_sites_traffic(client, viewer,
                                                                           flush):
    client.force_login(viewer)
    assert client.get(OVERVIEW).status_code == 200
    assert client.get(f"{OVERVIEW}panel/cards/").status_code == 200
    flush()
    assert not MetricRollup.objects.filter(kind="request", name__startswith="/admin/").exists()
    assert not MetricRollup.objects.filter(kind="query", dimension__contains="/admin/").exists()


def test_the_costliest_panels_load_right_after_the_page(client, viewer, traffic):
    client.force_login(viewer)
    body = client.get(OVERVIEW).content.decode()
    for name in ("insights", "bundles", "journeys"):
        shell = re.search(rf'<section id="pm-panel-{name}".*?</section>', body, re.S).group(0)
        assert f'hx-get="{OVERVIEW}panel/{name}/?range=24h"' in shell
        assert 'hx-trigger="load"' in shell and "Loading" in shell
    routes = re.search(r'<section id="pm-panel-routes".*?</section>', body, re.S).group(0)
    assert "hx-trigger" not in routes and 'data-route="/boom/"' in routes


def test_export_links_download_the_report_for_the_chosen_range(client, viewer, traffic):
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}?range=7d").content.decode()
    links = re.findall(r'href="(/perfmonitor/api/v1/report\?[^"]+)"', body)
    assert {html.unescape(link).split("format=")[1] for link in links} == {"html", "csv", "json"}
    report = client.get(html.unescape(next(link for link in links if "format=csv" in link)))
    assert report.status_code == 200
    assert report["Content-Type"].startswith("text/csv")
    assert "window=7d" in html.unescape(links[0])


def test_the_route_drill_down_names_its_n_plus_one(client, viewer, flush):
    from tests.testapp.models import Course, Lesson

    writer._known_fingerprints.clear()
    for i in range(8):
        Lesson.objects.create(course=Course.objects.create(title=f"Course {i}"), title=f"L{i}")
    assert client.get("/lessons/").status_code == 200
    flush()
    client.force_login(viewer)
    body = client.get(f"{OVERVIEW}route/?name=/lessons/&method=GET").content.decode()
    hot_spot = re.search(r'data-n-plus-one="([0-9a-f]+)"', body)
    assert hot_spot, "no N+1 hot spot listed"
    assert "8 queries per request" in body.replace("8.0 queries", "8 queries")
    assert f'data-fingerprint="{hot_spot.group(1)}"' in body
    assert ">N+1<" in body  # the badge in the slowest-queries table
