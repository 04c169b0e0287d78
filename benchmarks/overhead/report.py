"""Per-round ratios to bare, their medians across rounds, and the markdown table."""

from __future__ import annotations

import statistics
from typing import Any

# Issue #2's targets for perfmonitor: (min rps ratio, max CPU-per-request ratio).
TARGETS = {"one": (0.95, 1.05), "ten": (0.98, 1.02)}
PEERS = ("django-silk", "django-prometheus", "sentry-sdk")
VIEW_LABELS = {"one": "1-query", "ten": "10-query"}


def _ratios(measurements: list[dict[str, Any]], key: str) -> dict[tuple[str, str], list[float]]:
    """Each (profile, view)'s value over bare's from the same round and view."""
    bare = {(m["round"], m["view"]): m[key] for m in measurements if m["profile"] == "bare"}
    out: dict[tuple[str, str], list[float]] = {}
    for m in measurements:
        base = bare.get((m["round"], m["view"]))
        if base:
            out.setdefault((m["profile"], m["view"]), []).append(m[key] / base)
    return out


def _spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(measurements: list[dict[str, Any]], profiles: list[str],
              views: list[str]) -> dict[str, Any]:
    ratio_keys = ("rps", "cpu_ms_per_request", "p50_ms", "p99_ms")
    ratios = {key: _ratios(measurements, key) for key in ratio_keys}
    rows = []
    for view in views:
        for profile in profiles:
            ms = [m for m in measurements if m["profile"] == profile and m["view"] == view]
            if not ms:
                continue
            row: dict[str, Any] = {"profile": profile, "view": view, "rounds": len(ms)}
            for key in ("rps", "p50_ms", "p99_ms", "cpu_ms_per_request", "others_cores"):
                row[key] = statistics.median(m[key] for m in ms)
            row["non_2xx"] = sum(m["non_2xx"] for m in ms)
            row["socket_errors"] = sum(m["socket_errors"] for m in ms)
            for key in ratio_keys:
                values = ratios[key].get((profile, view))
                row[f"{key}_ratio"] = _spread(values) if values else None
            rows.append(row)
    return {"rows": rows, "verdicts": _verdicts(rows, views)}


def _row(rows: list[dict[str, Any]], profile: str, view: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["profile"] == profile and r["view"] == view), None)


def _verdicts(rows: list[dict[str, Any]], views: list[str]) -> list[str]:
    lines = []
    for view in views:
        label = VIEW_LABELS.get(view, view)
        placebo = _row(rows, "placebo", view)
        if placebo and placebo["rps_ratio"]:
            r, c = placebo["rps_ratio"], placebo["cpu_ms_per_request_ratio"]
            lines.append(
                f"{label}: noise floor (placebo / bare): rps {r['min']:.3f}..{r['max']:.3f} "
                f"(median {r['median']:.3f}), CPU/request {c['min']:.3f}..{c['max']:.3f} "
                f"(median {c['median']:.3f})")
        pm = _row(rows, "perfmonitor", view)
        if not pm or not pm["rps_ratio"]:
            continue
        rps, cpu = pm["rps_ratio"]["median"], pm["cpu_ms_per_request_ratio"]["median"]
        want_rps, want_cpu = TARGETS.get(view, (None, None))
        if want_rps is not None:
            ok = rps >= want_rps and cpu <= want_cpu
            lines.append(f"{label}: perfmonitor rps x{rps:.3f} (target >= {want_rps}), "
                         f"CPU/request x{cpu:.3f} (target <= {want_cpu}): "
                         f"{'met' if ok else 'NOT met'}{_resolution(placebo, want_cpu)}")
        for peer in PEERS:
            other = _row(rows, peer, view)
            if not other or not other["rps_ratio"]:
                continue
            orps = other["rps_ratio"]["median"]
            ocpu = other["cpu_ms_per_request_ratio"]["median"]
            ahead = rps > orps and cpu < ocpu
            noise = _cpu_noise(placebo)
            within = noise is not None and abs(ocpu - cpu) < noise
            lines.append(f"{label}: perfmonitor vs {peer}: rps x{rps:.3f} vs x{orps:.3f}, "
                         f"CPU/request x{cpu:.3f} vs x{ocpu:.3f}: "
                         f"{'ahead' if ahead else 'NOT ahead'}"
                         f"{' (CPU difference within the noise floor)' if within else ''}")
    return lines


def _cpu_noise(placebo: dict[str, Any] | None) -> float | None:
    if not placebo or not placebo["cpu_ms_per_request_ratio"]:
        return None
    spread = placebo["cpu_ms_per_request_ratio"]
    return max(1 - spread["min"], spread["max"] - 1)


def _resolution(placebo: dict[str, Any] | None, want_cpu: float) -> str:
    """Say so when the noise floor is wider than the margin the target allows."""
    noise = _cpu_noise(placebo)
    if noise is None:
        return " (no placebo: noise unknown)"
    if noise > abs(want_cpu - 1):
        return (f", but not resolvable in this run: placebo CPU/request spread "
                f"+-{noise * 100:.0f}% > the {abs(want_cpu - 1) * 100:.0f}% margin")
    return ""


def _fmt_ratio(spread: dict[str, float] | None) -> str:
    if spread is None:
        return "-"
    return f"{spread['median']:.3f} ({spread['min']:.2f}-{spread['max']:.2f})"


def markdown(summary: dict[str, Any]) -> str:
    head = ("| view | profile | rps | p50 ms | p99 ms | CPU ms/req | rps ratio | "
            "CPU/req ratio | p99 ratio | non-2xx | sock err |")
    lines = [head, "|" + "---|" * 11]
    for r in summary["rows"]:
        lines.append(
            f"| {VIEW_LABELS.get(r['view'], r['view'])} | {r['profile']} | {r['rps']:.0f} | "
            f"{r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['cpu_ms_per_request']:.3f} | "
            f"{_fmt_ratio(r['rps_ratio'])} | {_fmt_ratio(r['cpu_ms_per_request_ratio'])} | "
            f"{_fmt_ratio(r['p99_ms_ratio'])} | {r['non_2xx']} | {r['socket_errors']} |")
    lines.append("")
    lines.append("Values are medians across rounds; ratios are to bare in the same round, "
                 "median (min-max) across rounds.")
    lines.append("")
    lines.extend(f"- {v}" for v in summary["verdicts"])
    return "\n".join(lines)
