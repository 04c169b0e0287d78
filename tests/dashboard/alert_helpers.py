"""Alert episodes for the dashboard's stories, changed through the alerting package."""

from __future__ import annotations

from perfmonitor import live


def change_an_alert_state() -> None:
    live.publish("alerts", {"state": "firing"}, force=True)
