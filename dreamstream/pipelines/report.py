"""How `dreamstream stats` shows its result: a console table, and an HTML page of plots (PNG embedded)."""

from __future__ import annotations

import base64
import html
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from dreamstream.pipelines.stats import StatsResult


def _num(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    if float(value).is_integer() and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.{digits}g}" if abs(value) >= 1e4 or abs(value) < 1e-3 else f"{value:.{digits}f}"


def _dist_row(name: str, stats: dict[str, float] | None) -> str:
    if not stats:
        return f"  {name:<20}-"
    cols = [stats["mean"], stats["std"], stats["min"], stats["p5"], stats["p50"], stats["p95"], stats["max"]]
    return f"  {name:<20}" + "".join(f"{_num(v):>10}" for v in cols)


DIST_HEADER = f"  {'':<20}" + "".join(f"{h:>10}" for h in ("mean", "std", "min", "p5", "median", "p95", "max"))


def format_table(summary: dict[str, Any]) -> str:
    """The console view of a stats summary."""
    s = summary
    ep = s["episodes"]
    lines = [
        f"dataset    {s['root']}",
        f"env        {s['env']}" + (f"  (preset {s['preset']})" if s.get("preset") else ""),
        f"shards     {s['shards']} ({s['bytes'] / 2**20:.1f} MiB), samples {s['samples']}, steps {s['steps']}",
        f"episodes   {ep['total']} ({ep['complete']} complete: {ep['terminated']} terminated, "
        f"{ep['truncated']} truncated; {ep['incomplete']} incomplete)",
    ]
    if "lineage" in s:
        check = s["lineage"]
        verdict = "complete" if check["complete"] else "INCOMPLETE"
        lines.append(f"corpus     {verdict}: expected {check['expected']}, found {check['found']}")
    lines += ["", DIST_HEADER, _dist_row("return", s["return"]), _dist_row("length", s["length"])]
    for title, key in (("policy@version", "by_policy"), ("writer", "by_writer")):
        groups = s[key]
        lines += ["", f"  {'by ' + title:<34}{'episodes':>9}{'steps':>10}{'term':>7}{'trunc':>7}"
                      f"{'return mean':>13}{'std':>9}{'length mean':>13}"]
        for name, g in groups.items():
            r, length = g["return"] or {}, g["length"] or {}
            lines.append(f"  {name[:34]:<34}{g['episodes']:>9}{g['steps']:>10}{g['terminated']:>7}{g['truncated']:>7}"
                         f"{_num(r.get('mean')):>13}{_num(r.get('std')):>9}{_num(length.get('mean')):>13}")
    if "actions" in s:
        a = s["actions"]
        lines.append("")
        if a["kind"] == "discrete":
            lines.append(f"actions    {s['transitions']} transitions, {a['n']} actions: "
                         + " ".join(f"{i}:{f:.1%}" for i, f in enumerate(a["frequencies"])))
        else:
            lines.append("actions    mean " + ", ".join(_num(v) for v in a.get("mean", [])) + "; std "
                         + ", ".join(_num(v) for v in a.get("std", [])))
        r = s["rewards"]
        if r.get("count"):
            text = (f"rewards    mean {_num(r['mean'])} std {_num(r['std'])} min {_num(r['min'])} "
                    f"max {_num(r['max'])}; nonzero {r['nonzero']} of {r['count']}")
            if "values" in r and len(r["values"]) <= 8:
                text += "; " + " ".join(f"{_num(v)}:{c}" for v, c in zip(r["values"], r["counts"], strict=True))
            lines.append(text)
    for name, f in s.get("observations", {}).items():
        if f.get("kind") == "image" and f.get("rows"):
            lines.append(f"obs        {name}: image, mean/channel " + ", ".join(_num(v, 1) for v in f["mean"])
                         + "; std " + ", ".join(_num(v, 1) for v in f["std"]))
        elif f.get("kind") == "categorical":
            tops = []
            for c, freqs in enumerate(f["frequencies"]):
                order = np.argsort(freqs)[::-1][:3]
                tops.append(f"ch{c} " + " ".join(f"{k}:{freqs[k]:.0%}" for k in order))
            lines.append(f"obs        {name}: categorical, top classes " + "; ".join(tops))
        elif f.get("count"):
            mean, std = np.ravel(f["mean"]), np.ravel(f["std"])
            more = "" if len(mean) <= 6 else f" ... ({len(mean)} {f['per']}s)"
            lines.append(f"obs        {name}: {f['kind']}, mean " + ", ".join(_num(v) for v in mean[:6])
                         + "; std " + ", ".join(_num(v) for v in std[:6]) + more)
    seconds = s.get("seconds", {})
    lines += ["", "time       records {:.2f} s".format(seconds.get("records_s", 0))
              + (", shards {:.2f} s on {} worker(s)".format(seconds["shards_s"], s.get("workers"))
                 if "shards_s" in seconds else "")]
    return "\n".join(lines)


# -- HTML -------------------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buffer.getvalue()).decode()


def _bar_hist(ax: Any, hist: dict[str, list], color: str = "C0", label: str | None = None) -> None:
    edges = np.asarray(hist["edges"])
    ax.bar(edges[:-1], hist["counts"], width=np.diff(edges), align="edge", color=color, alpha=0.8,
           edgecolor="white", label=label)


def _boxes(ax: Any, groups: dict[str, Any], key: str) -> None:
    """Horizontal box plots from quantiles, group i at y=i (groups without complete episodes stay empty)."""
    stats, positions = [], []
    for i, g in enumerate(groups.values()):
        d = g[key]
        if d:
            stats.append({"med": d["p50"], "q1": d["p25"], "q3": d["p75"], "whislo": d["p5"], "whishi": d["p95"],
                          "mean": d["mean"], "fliers": []})
            positions.append(i)
    if stats:
        ax.bxp(stats, positions=positions, showmeans=True, orientation="horizontal", widths=0.6)


def figures(result: StatsResult) -> list[tuple[str, str, str]]:
    """(title, caption, base64 PNG) for each plot of the report."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    logging.getLogger("matplotlib").setLevel(logging.WARNING)

    s = result.summary
    out: list[tuple[str, str, str]] = []

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for ax, key, label in ((axes[0], "return_histogram", "episode return"), (axes[1], "length_histogram",
                                                                              "episode length (steps)")):
        if s.get(key):
            _bar_hist(ax, s[key])
        ax.set_xlabel(label)
        ax.set_ylabel("episodes")
    out.append(("Returns and lengths", "Complete episodes only (incomplete ones have no final return).",
                _png(fig)))

    for key, title in (("by_policy", "policy@version"), ("by_writer", "writer")):
        groups = s[key]
        if not groups:
            continue
        names = list(groups)
        y = np.arange(len(names))
        height = max(2.5, 0.45 * len(names) + 1.2)
        fig, axes = plt.subplots(1, 3, figsize=(13, height), sharey=True, gridspec_kw={"width_ratios": [2, 2, 1.3]})
        _boxes(axes[0], groups, "return")
        axes[0].set_xlabel("return (box p25-p75, whiskers p5-p95, | median, ^ mean)")
        _boxes(axes[1], groups, "length")
        axes[1].set_xlabel("length")
        term = [groups[n]["terminated"] for n in names]
        trunc = [groups[n]["truncated"] for n in names]
        axes[2].barh(y, term, color="C2", label="terminated")
        axes[2].barh(y, trunc, left=term, color="C1", label="truncated")
        axes[2].set_xlabel("episodes")
        axes[2].legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=2, fontsize=8, frameon=False)
        axes[0].set_yticks(y, [n if len(n) <= 28 else n[:25] + "..." for n in names])
        axes[0].set_ylim(-0.6, len(names) - 0.4)
        axes[0].invert_yaxis()
        out.append((f"By {title}", f"Episodes grouped by the {title} of their first chunk.", _png(fig)))

    if "actions" in s:
        a, r = s["actions"], s["rewards"]
        fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
        if a["kind"] == "discrete":
            axes[0].bar(np.arange(a["n"]), a["counts"], color="C0")
            axes[0].set_xticks(np.arange(a["n"]))
            axes[0].set_xlabel("action index")
        else:
            for d, counts in enumerate(a["counts"]):
                edges = np.asarray(a["edges"][d])
                axes[0].stairs(counts, edges, label=f"dim {d}")
            axes[0].set_xlabel("action value")
            if len(a["counts"]) <= 8:
                axes[0].legend(fontsize=8)
        axes[0].set_ylabel("transitions")
        axes[0].set_title("actions")
        if "values" in r:
            values = np.asarray(r["values"])
            if len(values) <= 24:
                axes[1].bar(np.arange(len(values)), r["counts"], color="C3")
                axes[1].set_xticks(np.arange(len(values)), [_num(v) for v in values])
            else:  # many distinct values: a histogram of them reads better than one bar each
                counts, edges = np.histogram(values, bins=40, weights=r["counts"])
                _bar_hist(axes[1], {"edges": edges, "counts": counts}, color="C3")
            axes[1].set_xlabel("reward value")
        elif "edges" in r:
            _bar_hist(axes[1], r, color="C3")
            axes[1].set_xlabel("reward")
        counts = np.asarray(r.get("counts", []), dtype=float)
        positive = counts[counts > 0]
        if len(positive) and positive.max() > 50 * positive.min():  # rare rewards stay visible
            axes[1].set_yscale("log")
            axes[1].set_ylabel("transitions (log)")
        else:
            axes[1].set_ylabel("transitions")
        axes[1].set_title("rewards")
        out.append(("Actions and rewards", "Transitions = rows that are not an episode's first row.", _png(fig)))

    for name, f in s.get("observations", {}).items():
        if f.get("kind") == "image" and f.get("rows"):
            fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1, 2]})
            frame = result.mean_frames.get(name)
            if frame is not None:
                shown = frame[..., 0] if frame.shape[-1] == 1 else frame
                axes[0].imshow(np.clip(shown, 0, 255).astype(np.uint8), cmap="gray" if shown.ndim == 2 else None)
            axes[0].set_title("mean frame")
            axes[0].axis("off")
            colors = ["C3", "C2", "C0"] if f["channels"] == 3 else [f"C{i}" for i in range(f["channels"])]
            for c, counts in enumerate(f["value_histogram"]):
                axes[1].stairs(counts, np.arange(257), color=colors[c % len(colors)],
                               label=f"ch{c} mean {f['mean'][c]:.1f} std {f['std'][c]:.1f}")
            axes[1].set_yscale("log")
            axes[1].set_xlabel("pixel value (sampled rows)")
            axes[1].legend(fontsize=8)
            out.append((f"Observation `{name}` (image)", "Mean/std use every pixel; the histogram samples rows.",
                        _png(fig)))
        elif f.get("kind") == "categorical":
            channels = len(f["classes"])
            fig, axes = plt.subplots(1, channels, figsize=(4 * channels, 3.2), squeeze=False)
            for c in range(channels):
                axes[0, c].bar(np.arange(f["classes"][c]), f["frequencies"][c], color=f"C{c}")
                if f["classes"][c] <= 20:
                    axes[0, c].set_xticks(np.arange(f["classes"][c]))
                axes[0, c].set_xlabel(f"class (channel {c})")
            axes[0, 0].set_ylabel("frequency")
            out.append((f"Observation `{name}` (categorical)", "Class frequencies per channel.", _png(fig)))
        elif f.get("count"):
            mean, std = np.ravel(f["mean"]), np.ravel(f["std"])
            lo, hi = np.ravel(f["min"]), np.ravel(f["max"])
            x = np.arange(len(mean))
            fig, ax = plt.subplots(figsize=(max(5, min(14, 0.3 * len(mean) + 3)), 3.2))
            ax.fill_between(x, lo, hi, color="C0", alpha=0.15, step="mid", label="min-max")
            if len(mean) <= 64:
                ax.errorbar(x, mean, yerr=std, fmt="o", color="C0", label="mean ± std")
            else:
                ax.fill_between(x, mean - std, mean + std, color="C0", alpha=0.35, step="mid", label="mean ± std")
                ax.plot(x, mean, color="C0", lw=0.8, drawstyle="steps-mid", label="mean")
            ax.set_xlabel(f["per"])
            ax.legend(fontsize=8)
            out.append((f"Observation `{name}` ({f['kind']})", f"Per {f['per']}.", _png(fig)))
    return out


def write_html(result: StatsResult, folder: str | Path) -> Path:
    """Write `index.html` (plots embedded, no other files needed) and `stats.json` into `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    s = result.summary
    (folder / "stats.json").write_text(json.dumps(s, indent=2))
    sections = []
    for title, caption, png in figures(result):
        sections.append(f"<h2>{html.escape(title)}</h2><p class=cap>{html.escape(caption)}</p>"
                        f"<img src='data:image/png;base64,{png}' alt='{html.escape(title)}'>")
    table = html.escape(format_table(s))
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>dreamstream stats: {html.escape(s['root'])}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 1.4em; }} h2 {{ font-size: 1.1em; margin-top: 2em; border-bottom: 1px solid #ddd; }}
.cards {{ display: flex; gap: 1em; flex-wrap: wrap; }}
.card {{ background: #f5f7fa; border-radius: 6px; padding: .6em 1em; min-width: 8em; }}
.card b {{ display: block; font-size: 1.4em; }}
.cap {{ color: #666; font-size: .9em; margin: .2em 0 .6em; }}
img {{ max-width: 100%; }}
pre {{ background: #f5f7fa; padding: 1em; overflow-x: auto; font-size: .8em; }}
</style></head><body>
<h1>{html.escape(s['root'])}</h1>
<p>env <code>{html.escape(s['env'])}</code>{' (deep statistics)' if s.get('deep') else ''}</p>
<div class=cards>
{_card('episodes', s['episodes']['complete'], f"{s['episodes']['incomplete']} incomplete")}
{_card('steps', s['steps'], f"{s['shards']} shards, {s['bytes'] / 2**20:.1f} MiB")}
{_card('mean return', _num((s['return'] or {}).get('mean')), f"std {_num((s['return'] or {}).get('std'))}")}
{_card('mean length', _num((s['length'] or {}).get('mean')), f"std {_num((s['length'] or {}).get('std'))}")}
{_card('terminated', s['episodes']['terminated'], f"{s['episodes']['truncated']} truncated")}
</div>
{''.join(sections)}
<h2>Table</h2><pre>{table}</pre>
<p class=cap>All numbers: <a href="stats.json">stats.json</a>. Definitions: docs/pipelines.md.</p>
</body></html>
"""
    path = folder / "index.html"
    path.write_text(page)
    return path


def _card(title: str, value: Any, note: str) -> str:
    return f"<div class=card>{html.escape(title)}<b>{html.escape(str(value))}</b>{html.escape(note)}</div>"
