"""The cross-encoder's training recipe, measured on dev: one setting per call, trained on a finished
`tandem run`'s mined groups with its dev curve (nDCG@10 of reranking the dev queries' hybrid top
`--depth`, every `--eval-every` steps), appended as one JSON line to OUT/results.jsonl. A quality
experiment, not a speed benchmark: its figures choose `RerankerDefaults` on the dev splits of every
collection at hand (docs/experiments.md says which).

    .venv/bin/python -m experiments.cross_encoder --run runs/nfcorpus --dataset nfcorpus \\
        --name bce --loss bce --groups runs/nfcorpus/mining/groups.jsonl --positive-depth 100

`--test` also reranks the dev and test queries' hybrid top 100 with the best dev checkpoint (runs kept as
OUT/NAME/{dev,test}-hybrid-top100.trec): for the setting already chosen, never to choose one.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from core.data.groups import groups_with_negatives_ranked, read_groups
from core.data.runs import write_run
from core.data.sources import open_dataset
from pipelines.defaults import DEFAULTS
from pipelines.evaluation.dev_score import rerank_dev_score
from pipelines.evaluation.metrics import evaluate
from pipelines.evaluation.report import paired_p_value
from pipelines.stages.context import RunContext
from pipelines.stages.rerank import hybrid_run
from rerank.model import CrossEncoder
from rerank.rerank import rerank_run
from rerank.train import RerankerConfig, train_reranker
from retrieval.mining import parse_rank_range


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a `tandem run` folder finished up to `mining`")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--name", required=True, help="the setting's name (its folder under OUT)")
    parser.add_argument("--out", type=Path, help="default: RUN/experiments/cross-encoder")
    recipe = RerankerConfig()  # every default below is the recipe's: a call changes only what it names
    parser.add_argument("--steps", type=int, default=recipe.max_steps)
    parser.add_argument("--eval-every", type=int, default=recipe.eval_every)
    parser.add_argument("--patience", type=int, default=recipe.patience)
    parser.add_argument(
        "--depth", type=int, default=DEFAULTS["reranker"]["eval_depth"], help="dev hits reranked at each evaluation"
    )
    parser.add_argument("--lr", type=float, default=recipe.learning_rate)
    parser.add_argument("--head-lr", type=float, default=recipe.head_learning_rate)
    parser.add_argument("--loss", default=recipe.loss)
    parser.add_argument("--positives", type=int, default=recipe.positives, help="positives per sampled group, at most")
    parser.add_argument("--group-size", type=int, default=recipe.group_size)
    parser.add_argument("--batch-queries", type=int, default=recipe.batch_queries)
    parser.add_argument("--max-length", type=int, default=recipe.max_length)
    parser.add_argument(
        "--titles", type=int, default=-1, help="title pseudo-query groups added (-1: all the run mined)"
    )
    parser.add_argument(
        "--rank-window",
        help="keep only the judged queries' negatives their source ranked A..B (A:B; replaces --negative-depth)",
    )
    parser.add_argument("--groups", type=Path, help="mined groups (default: RUN/mining/groups.jsonl)")
    parser.add_argument(
        "--positive-depth",
        type=int,
        default=recipe.positive_depth,
        help="keep only positives the mining sources ranked within this depth (0: all; default: the recipe's)",
    )
    parser.add_argument(
        "--negative-depth",
        type=int,
        default=recipe.negative_depth,
        help="keep only the judged queries' negatives their source ranked within this depth (0: all; default: the recipe's)",
    )
    parser.add_argument("--init", default="start", help="start (the run's start model), retriever, or a model path")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--keep-checkpoints",
        type=int,
        default=recipe.keep_checkpoints,
        help=f"checkpoints kept (one every {recipe.save_every} steps), e.g. for experiments/checkpoint_average.py",
    )
    parser.add_argument("--test", action="store_true", help="also rerank test's hybrid top 100 (the chosen setting)")
    args = parser.parse_args()

    out = (args.out or args.run / "experiments" / "cross-encoder") / args.name
    config = {**DEFAULTS, **json.loads((args.run / "mining" / "config.json").read_text())}
    dataset = open_dataset(args.dataset)
    groups = read_groups(args.groups or args.run / "mining" / "groups.jsonl", dataset.corpus)
    window = parse_rank_range(args.rank_window)
    if window:  # in place of the recipe's negative_depth (below)
        groups = groups_with_negatives_ranked(groups, *window)
    titles_path = args.run / "mining" / "title-groups.jsonl"
    titles = read_groups(titles_path, dataset.corpus) if titles_path.is_file() else []
    groups += titles if args.titles < 0 else titles[: args.titles]
    context = RunContext(dataset, args.run, config)
    dev_qrels = context.dev_qrels()
    dev_score = rerank_dev_score(hybrid_run(context, "dev"), dataset.queries, dataset.corpus, dev_qrels, args.depth)
    model = {"start": config["reranker"]["model"], "retriever": str(args.run / "retriever" / "model")}.get(
        args.init, args.init
    )
    trainer = RerankerConfig(
        model=model, loss=args.loss, positives=args.positives, group_size=args.group_size, batch_queries=args.batch_queries,
        max_length=args.max_length, epochs=1, min_steps=args.steps, max_steps=args.steps, learning_rate=args.lr,
        head_learning_rate=args.head_lr, seed=args.seed, eval_every=args.eval_every, patience=args.patience,
        positive_depth=args.positive_depth, negative_depth=0 if window else args.negative_depth,
        keep_checkpoints=args.keep_checkpoints,
    )  # fmt: skip
    started = time.perf_counter()
    if (out / "training_config.json").is_file():
        summary = json.loads((out / "summary.json").read_text())
    else:
        summary = train_reranker(groups, trainer, out, resume=True, dev_score=dev_score)
        (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    record = {
        "dataset": dataset.name, "name": args.name, "args": {k: str(v) for k, v in vars(args).items()},
        "groups": len(groups), "dev_queries": len(dev_qrels), "curve": summary.get("dev_curve"),
        "best_step": summary.get("best_step"), "best_dev": summary.get("best_dev"),
        "seconds": round(time.perf_counter() - started),
    }  # fmt: skip
    print(f"{dataset.name} {args.name}: best dev nDCG@10 {record['best_dev']:.4f} at step {record['best_step']}; "
          f"curve {record['curve']}")  # fmt: skip
    if args.test:
        first = {split: hybrid_run(context, split) for split in ("dev", "test")}
        qrels = {"dev": dev_qrels, "test": dataset.qrels(config["split"]["test"])}
        reranker = CrossEncoder.from_pretrained(out).to_device()
        for split in ("dev", "test"):
            reranked = rerank_run(first[split], dataset.queries, dataset.corpus, reranker, 100, show_progress=False)
            write_run(reranked, out / f"{split}-hybrid-top100.trec", tag=args.name)  # for paired tests later
            scored, base = evaluate(reranked, qrels[split]), evaluate(first[split], qrels[split])
            record[f"{split}_at_100"] = scored.aggregate["nDCG@10"]
            record[f"{split}_hybrid"] = base.aggregate["nDCG@10"]
            record[f"{split}_p_vs_hybrid"] = paired_p_value(scored, base)
        print({k: v for k, v in record.items() if k.endswith(("_at_100", "_hybrid", "_p_vs_hybrid"))})
    with open(out.parent / "results.jsonl", "a") as results:
        results.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
