"""The original design's five default alert rules, and an in-app channel they notify.

Thresholds come from the PERFMONITOR settings at install time (defaults: the
original design's 2 s, 500 ms, 4 s, 5 %, 2 MB). Rules are ordinary rows: edit,
disable or delete them in the admin. Re-running never overwrites edits.

Choices (README §Alerting explains them):

* API response time: p95 of every server request (all routes and methods)
  over 5 minutes, sustained for 5 minutes, at least 20 requests. Site-wide on
  purpose; per-route rules (group_by route) suit routes that matter.
* Database query time: p95 of every SQL query over 5 minutes (critical).
* LCP: p75 of LCP per page over the last hour (web-vitals aggregate at p75),
  at least 20 page views, sustained for 15 minutes.
* Error rate: share of server requests that failed over 5 minutes, at least
  50 requests (critical).
* Bundle size: p75 of the JavaScript transfer size per page over the last hour.

Latency rules resolve 10 % below their threshold (hysteresis); no data counts
as OK (quiet nights are not incidents).
"""

from django.db import migrations

CHANNEL = "In-app"


def _rules(conf):
    api_ms = float(conf.SLOW_API_MS)
    query_ms = float(conf.SLOW_QUERY_MS)
    error_pct = float(conf.HIGH_ERROR_RATE)
    bundle = float(conf.BUNDLE_SIZE_BYTES)
    common = {"source": "series", "operator": ">", "no_data_policy": "ok", "is_default": True}
    return [
        {**common, "key": "api-response-time", "name": "API response time",
         "description": "p95 of all server requests (every route and method) over 5 minutes "
                        "above the slow API threshold for 5 minutes.",
         "kind": "request", "aggregation": "p95", "window_seconds": 300, "min_samples": 20,
         "warning_threshold": api_ms, "resolve_threshold": api_ms * 0.9, "for_seconds": 300},
        {**common, "key": "database-query-time", "name": "Database query time",
         "description": "p95 of all SQL queries over 5 minutes above the slow query threshold "
                        "for 5 minutes.",
         "kind": "query", "aggregation": "p95", "window_seconds": 300, "min_samples": 50,
         "critical_threshold": query_ms, "resolve_threshold": query_ms * 0.9,
         "for_seconds": 300},
        {**common, "key": "lcp-poor", "name": "Poor LCP",
         "description": "p75 Largest Contentful Paint per page over the last hour in the poor "
                        "range (> 4 s) for 15 minutes.",
         "kind": "vital", "series_name": "LCP", "aggregation": "p75", "group_by": ["page"],
         "window_seconds": 3600, "min_samples": 20, "warning_threshold": 4000.0,
         "resolve_threshold": 3600.0, "for_seconds": 900},
        {**common, "key": "error-rate", "name": "High error rate",
         "description": "Share of failed server requests over 5 minutes above the high error "
                        "rate for 5 minutes.",
         "kind": "request", "aggregation": "error_rate", "window_seconds": 300,
         "min_samples": 50, "critical_threshold": error_pct,
         "resolve_threshold": error_pct * 0.8, "for_seconds": 300},
        {**common, "key": "bundle-size", "name": "Large JavaScript bundle",
         "description": "p75 JavaScript transfer size per page over the last hour above the "
                        "bundle budget.",
         "kind": "resource", "series_dimension": "js_transfer", "aggregation": "p75",
         "group_by": ["page"], "window_seconds": 3600, "min_samples": 1,
         "warning_threshold": bundle, "for_seconds": 0},
    ]


def install(apps, schema_editor):
    from perfmonitor.conf import settings as conf

    AlertRule = apps.get_model("perfmonitor", "AlertRule")
    NotificationChannel = apps.get_model("perfmonitor", "NotificationChannel")
    channel, _ = NotificationChannel.objects.get_or_create(name=CHANNEL,
                                                           defaults={"type": "in_app"})
    for values in _rules(conf):
        rule, created = AlertRule.objects.get_or_create(key=values["key"], defaults=values)
        if created:
            rule.channels.add(channel)


def uninstall(apps, schema_editor):
    AlertRule = apps.get_model("perfmonitor", "AlertRule")
    AlertRule.objects.filter(is_default=True).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("perfmonitor", "0002_alerting"),
    ]

    operations = [
        migrations.RunPython(install, uninstall),
    ]
