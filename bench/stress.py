"""A generated dataset with the shape most real collections have: many judged passages per query.

    python -m bench.stress --out runs/stress-data                   # write the dataset only
    python -m bench.stress --out runs/stress-data --run runs/stress # then `tandem run` on it: groups size, peak RSS

Shape (defaults): 3,000 passages with titles, 2,500 train queries with ~40 graded positives each (grades
1-2, like NFCorpus's 110k qrels over 2.6k queries), 200 test queries. Texts are random words from a
2,000-word vocabulary with the query's words planted in its positives, so BM25 and training have signal.
The test suite runs `tandem run --quick` on a smaller copy of this shape."""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
from pathlib import Path

VOCABULARY = [f"w{i}" for i in range(2000)]


def make_stress_dataset(
    out: Path,
    passages: int = 3000,
    train_queries: int = 2500,
    positives: int = 40,
    test_queries: int = 200,
    seed: int = 0,
) -> Path:
    """Write a BEIR folder with the shape above into `out`; returns `out`."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "qrels").mkdir(exist_ok=True)
    words = [rng.choices(VOCABULARY, k=rng.randint(40, 120)) for _ in range(passages)]
    queries, qrels = {}, {"train": [], "test": []}
    for split, count in (("train", train_queries), ("test", test_queries)):
        for q in range(count):
            query_id = f"{split[:2]}{q}"
            terms = rng.sample(VOCABULARY, 4)
            queries[query_id] = " ".join(terms)
            judged = rng.sample(range(passages), max(1, int(rng.gauss(positives, positives / 4))))
            for doc in judged:
                words[doc] += rng.sample(terms, 2)  # planted signal
                qrels[split].append((query_id, f"d{doc}", rng.choice((1, 1, 2))))
    with open(out / "corpus.jsonl", "w") as corpus:
        for i, text in enumerate(words):
            rng.shuffle(text)
            title = " ".join(text[:6])
            corpus.write(json.dumps({"_id": f"d{i}", "title": title, "text": " ".join(text)}) + "\n")
    with open(out / "queries.jsonl", "w") as handle:
        for query_id, text in queries.items():
            handle.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    for split, rows in qrels.items():
        with open(out / "qrels" / f"{split}.tsv", "w") as handle:
            handle.write("query-id\tcorpus-id\tscore\n")
            handle.writelines(f"{q}\t{d}\t{r}\n" for q, d, r in rows)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    parser.add_argument("--run", type=Path, help="also `tandem run` on it into this folder and report size and RSS")
    parser.add_argument("--quick", action="store_true", help="with --run: the --quick profile")
    parser.add_argument("--config", type=Path, help="with --run: a config file")
    args = parser.parse_args()
    make_stress_dataset(args.out)
    qrels = sum(1 for _ in open(args.out / "qrels" / "train.tsv")) - 1
    print(f"wrote {args.out}: train qrels {qrels}")
    if not args.run:
        return
    command = ["/usr/bin/time", "-v", sys.executable, "-m", "pipelines.cli", "run", "--dataset", str(args.out),
               "--out", str(args.run)] + (["--quick"] if args.quick else []) + (["--config", str(args.config)] if args.config else [])  # fmt: skip
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    rss = next((line for line in result.stderr.splitlines() if "Maximum resident" in line), "?")
    sizes = {
        p.name: p.stat().st_size for folder in ("retriever", "mining") for p in (args.run / folder).glob("*.jsonl")
    }
    print(f"exit {result.returncode} in {seconds:.0f} s; {rss.strip()}")
    print("groups files (bytes): " + json.dumps(sizes))
    if result.returncode:
        print(result.stderr[-3000:])


if __name__ == "__main__":
    main()
