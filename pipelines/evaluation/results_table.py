"""The README's results table, rendered from the run records in `results/` (each a copy of a published
run's `report/record.json`), so the figures a reader sees are data, not prose:

    python -m pipelines.evaluation.results_table --write README.md   # rewrite the table in place
    python -m pipelines.evaluation.results_table --check README.md   # exit 1 when it differs

The table sits between `<!-- results:start -->` and `<!-- results:end -->`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

START, END = "<!-- results:start -->", "<!-- results:end -->"
RESULTS = Path(__file__).resolve().parents[2] / "results"


def load_records(folder: Path = RESULTS) -> list[dict]:
    """Every record in `folder`, ordered by dataset name."""
    records = [json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))]
    return sorted(records, key=lambda record: record["dataset"])


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2g} †" if value < 0.05 else f"{value:.2g}"


def render(records: list[dict]) -> str:
    """One table per record: each system with dev and test figures (two-way fused variants left out, unless
    dev chose one as the result), under a line saying how it was run (and the record's `note`, added by
    whoever published it, e.g. which stages an earlier run supplied)."""
    blocks = []
    for record in records:
        machine = record["machine"]
        minutes = (record.get("wall_seconds") or record.get("process_seconds") or 0) / 60
        blocks.append(
            f"**{record['dataset']}** — `{record['command']}`; {minutes:.0f} min on {machine['cores']} cores "
            f"({machine['cpu']}), peak RSS {record['peak_rss_gib']:g} GiB; commit {str(record['commit'])[:10]}."
            + (f" {record['note']}" if record.get("note") else "")
        )
        blocks.append("")
        blocks.append("| system | dev nDCG@10 | test nDCG@10 | MRR@10 | Recall@100 | p vs BM25 | p vs first stage |")
        blocks.append("|---|---|---|---|---|---|---|")
        for name, entry in record["systems"].items():
            if " fused with " in name and name != record["result"]:
                continue
            test, dev = entry["test"], entry["dev"]
            shown = f"★ **{name}**" if name == record["result"] else name
            dev_cell = f"{dev['nDCG@10']:.4f}" if dev else "—"
            blocks.append(
                f"| {shown} | {dev_cell} | {test['nDCG@10']:.4f} | {test['MRR@10']:.4f} | {test['Recall@100']:.4f} "
                f"| {_p(entry['p_vs_bm25'])} | {_p(entry['p_vs_first_stage'])} |"
            )
        blocks.append("")
    return "\n".join(blocks).rstrip() + "\n"


def replace_table(text: str, table: str) -> str:
    """`text` with the part between the markers replaced by `table`."""
    if START not in text or END not in text:
        raise ValueError(f"no {START} ... {END} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, metavar="FILE", help="rewrite the table in FILE")
    action.add_argument("--check", type=Path, metavar="FILE", help="exit 1 when FILE's table differs from the records")
    args = parser.parse_args()
    path = args.write or args.check
    text = path.read_text()
    wanted = replace_table(text, render(load_records()))
    if args.write:
        path.write_text(wanted)
        return 0
    if wanted != text:
        print(f"{path}: the results table differs from results/*.json; rerun with --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
