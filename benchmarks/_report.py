"""Results: one ``Row`` per measured quantity, rendered as Markdown, JSON and a chart.

A row holds every repetition's value for each pool; the tables show the median and the
ratio ``median(threadpool_plus) / median(stdlib)`` (and pebble's likewise). Whether a
ratio above 1 is good depends on the row's ``better``: above 1 wins for "higher" rows
(throughput), below 1 wins for "lower" rows (time, latency, memory, threads).
"""

from __future__ import annotations

import math
import statistics
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from _pools import PEBBLE, POOLS, STDLIB, TPP

__all__ = ["Better", "Row", "markdown_tables", "ratio", "rows_to_json", "verdict", "write_chart"]

Better = Literal["higher", "lower"]

# Within this band around 1 a ratio is reported as a tie: the run-to-run noise of a
# shared 2-core machine is about that large.
TIE = 0.05

# Ratios below this are drawn at this length on the chart's log scale (0 has no log).
CHART_FLOOR = 1e-5


@dataclass
class Row:
    """One quantity of one scenario case, measured for each pool.

    Attributes:
        scenario: The scenario's key, e.g. ``"throughput"``.
        case: What varies inside the scenario, e.g. ``"4 workers"``.
        metric: What is measured, with its unit, e.g. ``"tasks/s"``.
        better: ``"higher"`` or ``"lower"``: which direction is good.
        samples: Pool name -> the value of each repetition.
        at_least: Pools whose values are lower bounds (the true value is at least this).
        configs: Pool name -> how that pool was configured in this row, when it differs
            from the scenario's description (e.g. ``"eager"``, ``"buffersize=1024"``).
    """

    scenario: str
    case: str
    metric: str
    better: Better
    samples: dict[str, list[float]]
    at_least: set[str] = field(default_factory=set)
    configs: dict[str, str] = field(default_factory=dict)

    def median(self, pool: str) -> float | None:
        values = self.samples.get(pool)
        return statistics.median(values) if values else None


def ratio(row: Row, pool: str) -> float | None:
    """``median(pool) / median(stdlib)``, or None when either is missing or stdlib is 0."""
    value, base = row.median(pool), row.median(STDLIB)
    if value is None or base is None or base == 0:
        return None
    return value / base


def verdict(row: Row, pool: str = TPP) -> str:
    """ "better", "worse" or "tie" for ``pool`` against the stdlib, by the row's direction."""
    r = ratio(row, pool)
    if r is None:
        return ""
    if abs(r - 1) <= TIE:
        return "tie"
    wins = r > 1 if row.better == "higher" else r < 1
    return "better" if wins else "worse"


def _number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def _cell(row: Row, pool: str) -> str:
    value = row.median(pool)
    if value is None:
        return "-"
    text = ("≥ " if pool in row.at_least else "") + _number(value)
    config = row.configs.get(pool)
    return f"{text} ({config})" if config else text


def _ratio_cell(row: Row, pool: str) -> str:
    r = ratio(row, pool)
    if r is None:
        return "-"
    text = f"{r:.3g}x" if r < 0.01 else f"{r:.2f}x"
    judged = verdict(row, pool)
    return f"{text} {judged}" if judged else text


def markdown_tables(rows: list[Row], titles: dict[str, str], pools: tuple[str, ...]) -> str:
    """One Markdown table per scenario, in the order the rows came."""
    shown = [p for p in POOLS if p in pools]
    ratios = [p for p in shown if p != STDLIB]
    header = ["case", "metric", "better", *shown, *(f"{p}/stdlib" for p in ratios)]
    out: list[str] = []
    scenarios = list(dict.fromkeys(row.scenario for row in rows))
    for scenario in scenarios:
        out.append(f"### {titles.get(scenario, scenario)}")
        out.append("")
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join([":--", ":--", ":--:"] + ["--:"] * (len(header) - 3)) + "|")
        for row in rows:
            if row.scenario != scenario:
                continue
            arrow = "↑ higher" if row.better == "higher" else "↓ lower"
            cells = [row.case, row.metric, arrow]
            cells += [_cell(row, p) for p in shown]
            cells += [_ratio_cell(row, p) for p in ratios]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def rows_to_json(rows: list[Row]) -> list[dict[str, Any]]:
    """Rows as plain data: samples, medians and ratios per pool."""
    result: list[dict[str, Any]] = []
    for row in rows:
        result.append(
            {
                "scenario": row.scenario,
                "case": row.case,
                "metric": row.metric,
                "better": row.better,
                "samples": row.samples,
                "median": {pool: row.median(pool) for pool in row.samples},
                "ratio_to_stdlib": {
                    pool: ratio(row, pool) for pool in row.samples if pool != STDLIB
                },
                "verdict": {pool: verdict(row, pool) for pool in row.samples if pool != STDLIB},
                "lower_bound": sorted(row.at_least),
                "configs": row.configs,
            }
        )
    return result


def write_chart(rows: list[Row], path: Path, title: str) -> str:
    """Draws every ratio to the stdlib as a bar on a log scale; returns a status line."""
    try:
        import matplotlib  # type: ignore[import-not-found, unused-ignore]

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # type: ignore[import-not-found, unused-ignore]
        from matplotlib.patches import Patch  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return "chart skipped: matplotlib is not installed (pip install matplotlib)"
    charted = [row for row in rows if ratio(row, TPP) is not None]
    if not charted:
        return "chart skipped: no ratio to draw"
    others = [p for p in (TPP, PEBBLE) if any(ratio(row, p) is not None for row in charted)]
    height = 0.8 / len(others)
    fig, ax = plt.subplots(figsize=(12, 0.5 * len(charted) + 2))
    labels: list[str] = []
    for index, row in enumerate(charted):
        arrow = "↑ better" if row.better == "higher" else "↓ better"
        case = "\n".join(textwrap.wrap(row.case, 48)[:2])
        labels.append(f"{row.scenario}: {row.metric} ({arrow})\n{case}")
        for offset, pool in enumerate(others):
            r = ratio(row, pool)
            if r is None:
                continue
            wins = r > 1 if row.better == "higher" else r < 1
            color = "#999999" if abs(r - 1) <= TIE else ("#2e7d32" if wins else "#c62828")
            y = index + (offset - (len(others) - 1) / 2) * height
            # A value of 0 (no memory growth at all) has no logarithm: draw it at the floor.
            length = math.log10(max(r, CHART_FLOOR))
            hatch = "//" if pool == PEBBLE else None
            ax.barh(y, length, height=height * 0.9, color=color, hatch=hatch)
            text = f"{r:.2g}x" if r >= CHART_FLOOR else "0x"
            ax.text(
                length,
                y,
                f" {text} " + ("pebble" if pool == PEBBLE else ""),
                va="center",
                ha="left" if r >= 1 else "right",
                fontsize=7,
            )
    ax.set_yticks(range(len(charted)))
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_ylim(len(charted) - 0.5, -0.5)
    ax.axvline(0, color="black", linewidth=0.8)
    low, high = ax.get_xlim()
    ax.set_xlim(min(low, -0.5) - 0.6, max(high, 0.5) + 0.6)
    ticks = [t for t in range(-6, 7) if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    ax.set_xticks(ticks)
    ax.set_xticklabels([f"{10.0**t:g}x" for t in ticks])
    ax.set_xlabel("median / stdlib's median (log scale)")
    ax.grid(axis="x", linewidth=0.3)
    legend = [
        Patch(color="#2e7d32", label="better than stdlib"),
        Patch(color="#c62828", label="worse than stdlib"),
        Patch(color="#999999", label=f"within ±{TIE:.0%}"),
        Patch(facecolor="white", edgecolor="black", hatch="//", label="pebble"),
    ]
    ax.legend(handles=legend, loc="lower right", fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f"chart written to {path}"
