"""The bi-encoder's schedule chosen on dev: epochs x attention dropout, each trained on the same BM25
negatives with the same seed, indexed, and scored on the dev queries the run held out. The experiment
behind the retriever's defaults (README, "How the defaults were chosen"). A quality experiment, not a
speed benchmark.

It reads a finished `tandem run` folder (train mode): the retriever stage's groups
(`retriever/bm25-negatives.jsonl`, the train queries less the dev ones) and its configuration. Every
other setting is the run's. The setting with the best dev nDCG@10 is the choice (ties go to fewer
epochs, then less dropout); each setting's test figure is printed beside it, with a paired t-test against
the chosen one, for the record only.

    .venv/bin/python -m experiments.retriever --run runs/scifact --dataset scifact --epochs 1 2 3 --dropouts 0 0.1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from core.data.groups import read_groups
from core.data.sources import open_dataset
from experiments.dev_grid import dev_and_test, evaluate_index, p_text, write_result
from experiments.dev_grid import train_and_index as train_and_index_setting
from pipelines.stages.retriever import retriever_config
from retrieval.train import RetrieverConfig


def setting_name(epochs: float, dropout: float) -> str:
    return f"ep{epochs:g}-drop{dropout:g}"


def train_and_index(run_config: dict, groups: list, corpus_path: Path, out: Path, epochs: float,
                    dropout: float) -> Path:  # fmt: skip
    """Train one setting (skipped when its model exists) with the run's settings but `epochs` (no step
    floor: the epochs alone decide) and attention `dropout`, as `tandem run`'s retriever stage builds them,
    and index the corpus; returns the index."""

    def training() -> tuple[list, RetrieverConfig]:
        options = {**run_config["retriever"], "epochs": epochs, "min_steps": 0, "attention_dropout": dropout}
        setting = {**run_config, "retriever": options}
        return groups, retriever_config(setting, options["model"] or run_config["dense"]["model"], options, groups)

    return train_and_index_setting(
        out / setting_name(epochs, dropout), training, corpus_path, run_config["dense"], "Flat"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished `tandem run` folder (train mode)")
    parser.add_argument("--dataset", required=True, help="the run's dataset (name or BEIR folder)")
    parser.add_argument("--out", type=Path, help="models, indexes and results (default: RUN/retriever-grid)")
    parser.add_argument("--epochs", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--dropouts", type=float, nargs="+", default=[0.0, 0.1], help="attention dropout")
    args = parser.parse_args()
    out = args.out or args.run / "retriever-grid"
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((args.run / "retriever" / "config.json").read_text())
    dataset = open_dataset(args.dataset)
    groups = read_groups(args.run / "retriever" / "bm25-negatives.jsonl", dataset.corpus)
    queries, qrels = dev_and_test(dataset, args.run, config)
    print(f"{len(groups)} groups, {len(queries['dev'])} dev queries, {len(queries['test'])} test queries")

    figures: dict[str, dict] = {}
    for epochs in args.epochs:
        for dropout in args.dropouts:
            index_dir = train_and_index(config, groups, dataset.corpus_path, out, epochs, dropout)
            name = setting_name(epochs, dropout)
            figures[name] = evaluate_index(index_dir, queries, qrels, name)
            print(f"{name}: dev nDCG@10 {figures[name]['dev'].aggregate['nDCG@10']:.4f}")
    settings = [(e, d) for e in args.epochs for d in args.dropouts]
    chosen = setting_name(*max(settings, key=lambda s: (figures[setting_name(*s)]["dev"].aggregate["nDCG@10"],
                                                        -s[0], -s[1])))  # fmt: skip
    print("\n| epochs | attention dropout | dev nDCG@10 | test nDCG@10 | p vs chosen (dev) | p vs chosen (test) |")
    print("|---|---|---|---|---|---|")
    for epochs, dropout in settings:
        name = setting_name(epochs, dropout)
        row = figures[name]
        p = {s: p_text(row, figures[chosen], s) for s in ("dev", "test")}
        mark = " (chosen)" if name == chosen else ""
        print(f"| {epochs:g}{mark} | {dropout:g} | {row['dev'].aggregate['nDCG@10']:.4f} | "
              f"{row['test'].aggregate['nDCG@10']:.4f} | {p['dev']} | {p['test']} |")  # fmt: skip
    write_result(out, chosen, figures)
    print(f"RESULT retriever: chosen on dev {chosen}")


if __name__ == "__main__":
    main()
