"""The comparison report: one table of systems x metrics, paired significance against a baseline,
per-stage latency, and plots. Written as report.md, metrics.json and PNGs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from core.atomic import atomic_file
from pipelines.evaluation.metrics import Evaluation

TABLE_MEASURES = ("nDCG@10", "MRR@10", "Recall@100")
SMALL_SAMPLE = 30
"""Below this many evaluated queries the report warns that its significance tests have little to go on."""


@dataclass
class System:
    name: str
    evaluation: Evaluation
    latency: dict[str, float] = field(default_factory=dict)
    """seconds per query of each stage, e.g. {"retrieve": 0.01, "rerank": 0.9}"""
    first_stage: str | None = None
    """the system this one builds on: the run a reranked system reranked, the bi-encoder a distilled one
    trained on from; the report tests it against that system"""
    dev: Evaluation | None = None
    """its figures on the dev split, when the run has one (what the result is chosen on)"""
    run_file: Path | None = None
    """its test run, for the report's per-query explorer (index.html)"""


def paired_p_value(system: Evaluation, baseline: Evaluation, measure: str = "nDCG@10") -> float | None:
    """Two-sided paired t-test over the queries both were evaluated on (scipy)."""
    queries = sorted(set(system.per_query) & set(baseline.per_query))
    a = np.array([system.per_query[q][measure] for q in queries])
    b = np.array([baseline.per_query[q][measure] for q in queries])
    if len(queries) < 2 or np.allclose(a, b):
        return None
    return float(stats.ttest_rel(a, b).pvalue)


def holm(p_values: dict[str, float | None]) -> dict[str, float | None]:
    """Holm-Bonferroni adjusted p-values of a family of tests (None stays None): what a table of several
    systems tested against one baseline should be read with."""
    tested = sorted((p, name) for name, p in p_values.items() if p is not None)
    adjusted: dict[str, float | None] = dict.fromkeys(p_values)
    running = 0.0
    for rank, (p, name) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[name] = running
    return adjusted


def metrics_payload(systems: list[System], baseline: str | None, measures=TABLE_MEASURES) -> dict:
    """metrics.json: per system its figures, per-query nDCG@10, p-values (raw and Holm-adjusted over the
    systems tested against the baseline), latency and dev figure; plus machine, versions and commit."""
    from pipelines.evaluation.provenance import commit, machine, versions

    base = next((s for s in systems if s.name == baseline), None)
    by_name = {s.name: s for s in systems}
    raw = {s.name: paired_p_value(s.evaluation, base.evaluation) if base and s is not base else None for s in systems}
    adjusted = holm(raw)
    return {
        "machine": machine(),
        "versions": versions(),
        "commit": commit(),
        "baseline": baseline,
        "systems": {
            s.name: {
                **{m: s.evaluation.aggregate[m] for m in measures},
                "queries": s.evaluation.num_queries,
                "p_value_vs_baseline_nDCG@10": raw[s.name],
                "p_value_vs_baseline_nDCG@10_holm": adjusted[s.name],
                "latency_s_per_query": s.latency,
                "first_stage": s.first_stage,
                "p_value_vs_first_stage_nDCG@10": paired_p_value(s.evaluation, by_name[s.first_stage].evaluation)
                if s.first_stage in by_name
                else None,
                "dev_nDCG@10": s.dev.aggregate["nDCG@10"] if s.dev else None,
                "per_query_nDCG@10": {q: v["nDCG@10"] for q, v in s.evaluation.per_query.items()},
            }
            for s in systems
        },
    }


def markdown_table(
    systems: list[System], baseline: str | None, measures=TABLE_MEASURES, result: str | None = None
) -> str:
    payload = metrics_payload(systems, baseline, measures)["systems"]
    stages = sorted({stage for s in systems for stage in s.latency})
    dev = any(s.dev for s in systems)
    header = [
        "system",
        "dev nDCG@10" if dev else None,
        *measures,
        f"p vs {baseline} (nDCG@10)" if baseline else None,
        "Holm p" if baseline else None,
        *(f"{st} ms/q" for st in stages),
    ]
    header = [h for h in header if h is not None]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    best = {m: max(payload[s.name][m] for s in systems) for m in measures}
    for s in systems:
        row = payload[s.name]
        cells = [f"★ {s.name}" if s.name == result else s.name]
        if dev:
            cells.append(f"{row['dev_nDCG@10']:.4f}" if s.dev else "")
        cells += [f"**{row[m]:.4f}**" if row[m] == best[m] else f"{row[m]:.4f}" for m in measures]
        if baseline:
            for key in ("p_value_vs_baseline_nDCG@10", "p_value_vs_baseline_nDCG@10_holm"):
                p = row[key]
                cells.append("—" if p is None else (f"{p:.3g} †" if p < 0.05 else f"{p:.3g}"))
        cells += [f"{s.latency[st] * 1000:.1f}" if st in s.latency else "" for st in stages]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def comparisons_table(systems: list[System], measure: str = "nDCG@10") -> str:
    """Each system against the one it builds on (`first_stage`): the difference and its paired p-value."""
    by_name = {s.name: s for s in systems}
    lines = [f"| system | against | Δ {measure} | p |", "|---|---|---|---|"]
    for s in systems:
        if s.first_stage in by_name:
            base = by_name[s.first_stage]
            delta = s.evaluation.aggregate[measure] - base.evaluation.aggregate[measure]
            p = paired_p_value(s.evaluation, base.evaluation, measure)
            shown = "—" if p is None else (f"{p:.3g} †" if p < 0.05 else f"{p:.3g}")
            lines.append(f"| {s.name} | {base.name} | {delta:+.4f} | {shown} |")
    return "\n".join(lines) if len(lines) > 2 else ""


def plot_metrics(systems: list[System], path: Path, measures=TABLE_MEASURES) -> None:
    """Grouped bars per system; the legend sits above the axes, so it never covers a bar."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(systems)), 4.4))
    width = 0.8 / len(measures)
    x = np.arange(len(systems))
    for i, measure in enumerate(measures):
        values = [s.evaluation.aggregate[measure] for s in systems]
        bars = ax.bar(x + i * width - 0.4 + width / 2, values, width, label=measure)
        ax.bar_label(bars, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    ax.set_xticks(x, [s.name for s in systems], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(0, 1.15)
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(measures), frameon=False)
    fig.suptitle("Metrics per system", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both cost (lower) and quality (higher), cheapest first."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -float("inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def plot_tradeoff(systems: list[System], path: Path, measure: str = "nDCG@10") -> bool:
    """Each system's test `measure` against its total ms per query (log scale), numbered markers keyed in a
    legend (labels beside points overlap when systems share a cost), the Pareto front drawn through the
    systems nothing beats on both. Returns False (no plot) when no system has a latency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    timed = [s for s in systems if sum(s.latency.values()) > 0]
    if not timed:
        return False
    points = [(sum(s.latency.values()) * 1000, s.evaluation.aggregate[measure]) for s in timed]
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for number, (s, (ms, value)) in enumerate(zip(timed, points, strict=True), start=1):
        ax.scatter(ms, value, s=22, zorder=3, label=f"{number}  {s.name}")
        ax.annotate(str(number), (ms, value), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front = pareto_front(points)
    ax.plot([points[i][0] for i in front], [points[i][1] for i in front], color="grey", linewidth=0.8,
            linestyle="--", zorder=2, label="Pareto front")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("ms per query (all stages, this machine)")
    ax.set_ylabel(f"{measure} (test)")
    ax.set_title("Quality against cost per query", fontsize=9)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def plot_per_query(reranked: System, first: System, path: Path, measure: str = "nDCG@10") -> None:
    """A histogram of per-query differences (the system against the one it builds on): where a scatter of
    two scores piles its points at 0 and 1, the differences show how many queries moved and how far."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    queries = sorted(set(reranked.evaluation.per_query) & set(first.evaluation.per_query))
    a = np.array([first.evaluation.per_query[q][measure] for q in queries])
    b = np.array([reranked.evaluation.per_query[q][measure] for q in queries])
    delta = b - a
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    bins = np.linspace(-1, 1, 41)
    ax.hist(delta[delta < 0], bins=bins, color="#c0392b", label=f"worse: {(delta < 0).sum()}")
    ax.hist(delta[delta > 0], bins=bins, color="#27ae60", label=f"better: {(delta > 0).sum()}")
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_xlabel(f"{measure}: {reranked.name} minus {first.name}", fontsize=7)
    ax.set_ylabel("queries")
    ax.set_title(f"per query ({(delta == 0).sum()} tied, left out; mean {delta.mean():+.4f})", fontsize=9)
    ax.legend(fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(
    out_dir: str | Path,
    title: str,
    systems: list[System],
    baseline: str | None,
    notes: str = "",
    preamble: list[str] = (),
    result: str | None = None,
) -> Path:
    """report.md, metrics.json, metrics.png and one per-query plot per reranked system. `preamble` lines
    go above the table; `result` names the system the report calls its result (marked ★)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_metrics(systems, out_dir / "metrics.png")
    by_name = {s.name: s for s in systems}
    plots = []
    for s in systems:
        if s.first_stage and s.first_stage in by_name:
            name = "per_query_" + "".join(c if c.isalnum() else "_" for c in s.name) + ".png"
            plot_per_query(s, by_name[s.first_stage], out_dir / name)
            plots.append((s.name, name))
    with atomic_file(out_dir / "metrics.json") as out:
        json.dump({**metrics_payload(systems, baseline), "result": result}, out, indent=2)
    lines = [f"# {title}", ""]
    lines += [*(f"{line}  " for line in preamble), ""] if preamble else []
    lines += [markdown_table(systems, baseline, result=result), ""]
    if baseline:
        queries = min((s.evaluation.num_queries for s in systems), default=0)
        small = (
            f" Only {queries} queries: a difference needs to be large to be significant, and a significant one "
            "may not hold on other queries."
            if queries < SMALL_SAMPLE
            else ""
        )
        lines += [
            f"† p < 0.05, two-sided paired t-test on per-query nDCG@10 against {baseline}; Holm p: the same "
            f"p-values adjusted (Holm-Bonferroni) for testing {len(systems) - 1} systems against one baseline. "
            f"Best figure per column in bold.{small}",
            "",
        ]
    comparisons = comparisons_table(systems)
    if comparisons:
        lines += [
            "Each system against the one it builds on (two-sided paired t-test, † p < 0.05):",
            "",
            comparisons,
            "",
        ]
    if notes:
        lines += [notes, ""]
    lines += ["![metrics per system](metrics.png)", ""]
    if plot_tradeoff(systems, out_dir / "tradeoff.png"):
        lines += ["![nDCG@10 against ms per query](tradeoff.png)", ""]
    lines += [f"![{name} vs {by_name[name].first_stage}]({png})" for name, png in plots]
    with atomic_file(out_dir / "report.md") as out:
        out.write("\n".join(lines) + "\n")
    return out_dir / "report.md"
