"""Listwise NLL vs pointwise BCE for the cross-encoder, each at the learning rate its own dev split
chooses: the experiment behind the README's loss comparison (Pradeep et al. 2022 ask it with BM25 and
with dense negatives). A quality experiment, not a speed benchmark.

It reads a finished `tandem run` folder (train mode): the mined groups (`mining/groups.jsonl`), the dev
split the run held out, and a first stage's dev and test runs. For each loss and each learning rate a
cross-encoder is trained on the same groups with the same seed and steps; each reranks the dev run;
each loss keeps its best dev learning rate; the two winners rerank the test run, and a paired t-test
compares them. `--sources dense` keeps only the negatives the dense index mined (`bm25`: only BM25's).
`--titles` adds the run's title pseudo-query groups (as `tandem run` trains on them), `--head-learning-rate`
gives the new classification head its own peak learning rate: two of the cross-encoder recipe's open
questions, each answered on dev by running this twice.

    .venv/bin/python -m experiments.losses --run runs/scifact --dataset scifact --sources dense
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from core.data.groups import read_groups
from core.data.runs import read_run, write_run
from core.data.sources import open_dataset
from pipelines.evaluation.metrics import evaluate
from pipelines.evaluation.report import paired_p_value
from pipelines.stages.context import RunContext
from rerank.model import CrossEncoder
from rerank.rerank import rerank_run
from rerank.train import RerankerConfig, train_reranker

FIRST_STAGES = {"bm25": "bm25/{split}.trec", "dense": "index/{split}.trec", "hybrid": "rerank/{dev}hybrid.trec"}


def first_stage_path(run_dir: Path, name: str, split: str) -> Path:
    return run_dir / FIRST_STAGES[name].format(split=split, dev="dev/" if split == "dev" else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished `tandem run` folder (train mode)")
    parser.add_argument("--dataset", required=True, help="the run's dataset (name or BEIR folder)")
    parser.add_argument("--out", type=Path, help="models, runs and results (default: RUN/losses-<sources>)")
    parser.add_argument("--sources", choices=["dense", "bm25", "both"], default="dense")
    parser.add_argument("--losses", nargs="+", default=["nll", "bce"])
    parser.add_argument("--learning-rates", type=float, nargs="+", default=[2e-5, 7e-5])
    parser.add_argument("--epochs", type=float, default=1.0, help="over the train queries' groups (default 1)")
    parser.add_argument("--first-stage", choices=list(FIRST_STAGES), default="bm25")
    parser.add_argument("--depth", type=int, default=30, help="hits reranked per query (default 30)")
    parser.add_argument("--titles", action="store_true", help="also train on mining/title-groups.jsonl")
    parser.add_argument("--head-learning-rate", type=float, help="the new head's peak lr (default: the body's)")
    args = parser.parse_args()
    recipe = f"{args.sources}{'-titles' if args.titles else ''}"
    recipe += f"-head{args.head_learning_rate:g}" if args.head_learning_rate else ""
    out = args.out or args.run / f"losses-{recipe}"
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((args.run / "reranker" / "config.json").read_text())
    dataset = open_dataset(args.dataset)
    options = config["reranker"]
    groups = read_groups(args.run / "mining" / "groups.jsonl", dataset.corpus)
    if args.sources != "both":
        for group in groups:
            group.negatives = [p for p in group.negatives if p.source == args.sources]
    if args.titles:
        groups += read_groups(args.run / "mining" / "title-groups.jsonl", dataset.corpus)
    qrels = {"dev": RunContext(dataset, args.run, config).dev_qrels(), "test": dataset.qrels(config["split"]["test"])}
    firsts = {split: read_run(first_stage_path(args.run, args.first_stage, split)) for split in qrels}
    print(f"{len(groups)} groups ({recipe}), {len(qrels['dev'])} dev queries, first stage {args.first_stage}")

    def reranked(model_dir: Path, split: str) -> dict:
        path = out / f"{model_dir.name}.{split}.trec"
        if not path.is_file():
            model = CrossEncoder.from_pretrained(model_dir).to_device()
            run = rerank_run(firsts[split], dataset.queries, dataset.corpus, model, args.depth, show_progress=False)
            write_run(run, path, tag=model_dir.name)
        return evaluate(read_run(path), qrels[split])

    dev_figures: dict[str, dict[float, float]] = {}
    for loss in args.losses:
        for rate in args.learning_rates:
            model_dir = out / f"{loss}-lr{rate:g}"
            if not (model_dir / "training_config.json").is_file():
                started = time.perf_counter()
                trainer = RerankerConfig(
                    model=options["model"], loss=loss, group_size=options["group_size"],
                    batch_queries=options["batch_queries"], max_length=options["max_length"], epochs=args.epochs, min_steps=0,
                    learning_rate=rate, head_learning_rate=args.head_learning_rate, seed=options["seed"],
                    precision=options["precision"],
                )  # fmt: skip
                summary = train_reranker(groups, trainer, model_dir)
                print(f"trained {model_dir.name}: {summary['steps']} steps in {time.perf_counter() - started:.0f} s")
            figure = reranked(model_dir, "dev").aggregate["nDCG@10"]
            dev_figures.setdefault(loss, {})[rate] = figure
            print(f"{loss} lr {rate:g}: dev nDCG@10 {figure:.4f}")
    first = {split: evaluate(run, qrels[split]) for split, run in firsts.items()}
    chosen = {loss: max(rates, key=lambda r: (rates[r], -r)) for loss, rates in dev_figures.items()}
    test = {loss: reranked(out / f"{loss}-lr{rate:g}", "test") for loss, rate in chosen.items()}
    print(
        f"\n| system | lr (chosen on dev) | dev nDCG@10 | test nDCG@10 | p vs {args.first_stage} |\n|---|---|---|---|---|"
    )
    print(
        f"| {args.first_stage} | | {first['dev'].aggregate['nDCG@10']:.4f} | {first['test'].aggregate['nDCG@10']:.4f} | |"
    )
    for loss, rate in chosen.items():
        p = paired_p_value(test[loss], first["test"])
        print(f"| {args.first_stage} + CE ({loss.upper()}, {recipe}, top {args.depth}) | {rate:g} | "
              f"{dev_figures[loss][rate]:.4f} | {test[loss].aggregate['nDCG@10']:.4f} | {p:.3g} |")  # fmt: skip
    result = {"dev": dev_figures, "chosen": chosen, "test": {k: v.aggregate["nDCG@10"] for k, v in test.items()}}
    if {"nll", "bce"} <= set(test):
        delta = test["nll"].aggregate["nDCG@10"] - test["bce"].aggregate["nDCG@10"]
        p = paired_p_value(test["nll"], test["bce"])
        result.update(delta=delta, p=p)
        print(f"RESULT losses ({recipe}): NLL - BCE = {delta:+.4f} nDCG@10 on test, paired p = {p:.3g}")
    (out / "result.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
