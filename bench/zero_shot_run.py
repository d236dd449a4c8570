"""A zero-shot `tandem run` on a small collection, end to end, wall time: what a user waits for before a
first report on a ~1,000-passage collection with no training data.

The collection is a BEIR subset of `--source` written under `--out`: every passage judged for its test
queries, then passages drawn at random (seeded) up to `--passages`; its test queries and qrels. Then

    tandem run --dataset OUT/data --mode zero-shot --out OUT/run

runs in a child process (the warm-up cache left as it is: a first run on a machine also pays for the
warm-up). The last line:

    RESULT zero-shot run: N passages, Q test queries in S s wall (report: OUT/run/report/report.md)

    .venv/bin/python -m bench.zero_shot_run --out runs/bench-zero-shot
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.common import data_root


def write_subset(source: Path, out: Path, passages: int, seed: int) -> tuple[int, int]:
    """A BEIR folder at `out`: `source`'s test-judged passages plus random others up to `passages`, its test
    queries and qrels; returns (passages, queries) written."""
    qrels_lines = (source / "qrels" / "test.tsv").read_text().splitlines()
    header, rows = qrels_lines[0], [line.split("\t") for line in qrels_lines[1:] if line.strip()]
    judged = {doc for _, doc, *_ in rows}
    corpus = [json.loads(line) for line in open(source / "corpus.jsonl")]
    others = [record for record in corpus if record["_id"] not in judged]
    random.Random(seed).shuffle(others)
    kept = [record for record in corpus if record["_id"] in judged] + others[: max(0, passages - len(judged))]
    queries = {query_id for query_id, *_ in rows}
    (out / "qrels").mkdir(parents=True)
    with open(out / "corpus.jsonl", "w") as f:
        f.writelines(json.dumps(record) + "\n" for record in kept)
    with open(out / "queries.jsonl", "w") as f:
        f.writelines(line for line in open(source / "queries.jsonl") if json.loads(line)["_id"] in queries)
    (out / "qrels" / "test.tsv").write_text("\n".join([header, *("\t".join(row) for row in rows)]) + "\n")
    return len(kept), len(queries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=data_root() / "scifact", help="BEIR folder to subset")
    parser.add_argument("--passages", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True, help="a new folder (refused if it exists)")
    args = parser.parse_args()
    if args.out.exists():
        sys.exit(f"{args.out} exists: give a new folder")
    passages, queries = write_subset(args.source, args.out / "data", args.passages, args.seed)
    tandem = shutil.which("tandem") or str(Path(sys.executable).parent / "tandem")
    command = [
        tandem,
        "run",
        "--dataset",
        str(args.out / "data"),
        "--mode",
        "zero-shot",
        "--out",
        str(args.out / "run"),
    ]
    print(" ".join(command), flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - started
    report = args.out / "run" / "report" / "report.md"
    print(
        f"RESULT zero-shot run: {passages} passages, {queries} test queries in {seconds:.1f} s wall (report: {report})"
    )


if __name__ == "__main__":
    main()
