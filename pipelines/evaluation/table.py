"""The many-datasets table, BEIR style: datasets as rows, systems as columns, nDCG@10, plus the average.
Read from each dataset's report/metrics.json; written as report.md, metrics.json and a plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.atomic import atomic_file

MEASURE = "nDCG@10"


def collect(runs: dict[str, Path]) -> dict[str, dict]:
    """dataset name -> that run's metrics.json (with its mode)."""
    collected = {}
    for name, folder in runs.items():
        metrics = json.loads((folder / "report" / "metrics.json").read_text())
        done = (
            json.loads((folder / "report" / "done.json").read_text())
            if (folder / "report" / "done.json").is_file()
            else {}
        )
        metrics["mode"] = done.get("result", {}).get("mode", "?")
        collected[name] = metrics
    return collected


def system_columns(collected: dict[str, dict]) -> list[str]:
    """Systems in first-seen order across datasets."""
    columns: list[str] = []
    for metrics in collected.values():
        columns += [name for name in metrics["systems"] if name not in columns]
    return columns


def write_table(out_dir: Path, runs: dict[str, Path]) -> Path:
    """report.md + metrics.json + ndcg.png in `out_dir` for the datasets' finished runs."""
    collected = collect(runs)
    columns = system_columns(collected)
    values = {
        dataset: {s: m["systems"][s][MEASURE] for s in columns if s in m["systems"]} for dataset, m in collected.items()
    }
    average = {
        s: float(np.mean([v[s] for v in values.values()])) for s in columns if all(s in v for v in values.values())
    }
    lines = [f"# tandem run: {len(runs)} datasets ({MEASURE})", ""]
    lines += ["| dataset | mode | result | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 3)]
    for dataset, row in values.items():
        result = collected[dataset].get("result")
        cells = [f"**{row[s]:.4f}**" if s == result else f"{row[s]:.4f}" if s in row else "—" for s in columns]
        lines.append(f"| {dataset} | {collected[dataset]['mode']} | {result or '—'} | " + " | ".join(cells) + " |")
    avg_cells = [f"{average[s]:.4f}" if s in average else "—" for s in columns]
    lines.append("| **average** | | | " + " | ".join(avg_cells) + " |")
    lines += [
        "",
        "Each dataset's result system (bold) is fixed in advance by its mode, never read off test figures; "
        "an average is shown only for systems every dataset has. Per-dataset reports: `<dataset>/report/report.md`.",
        "",
        "![nDCG@10 per dataset](ndcg.png)",
        "",
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    plot(values, columns, out_dir / "ndcg.png")
    with atomic_file(out_dir / "metrics.json") as out:
        json.dump(
            {
                "measure": MEASURE,
                "datasets": values,
                "average": average,
                "modes": {d: m["mode"] for d, m in collected.items()},
                "results": {d: m.get("result") for d, m in collected.items()},
            },
            out,
            indent=2,
        )
    with atomic_file(out_dir / "report.md") as out:
        out.write("\n".join(lines))
    return out_dir / "report.md"


def plot(values: dict[str, dict[str, float]], columns: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6, 1.5 * len(values) * max(1, len(columns)) / 4), 4))
    width = 0.8 / max(len(columns), 1)
    x = np.arange(len(values))
    for i, system in enumerate(columns):
        heights = [row.get(system, 0.0) for row in values.values()]
        ax.bar(x + i * width - 0.4 + width / 2, heights, width, label=system)
    ax.set_xticks(x, list(values), fontsize=8)
    ax.set_ylabel(MEASURE)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=6, loc="upper center", ncol=3, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
