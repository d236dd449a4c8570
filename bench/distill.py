"""The distill stage's label weight chosen on dev, with a control that has no teacher. Each setting
retrains the run's distill stage from its fine-tuned bi-encoder on the same scored groups, steps and seed,
indexes the corpus, and is scored on the dev queries the run held out. The experiment behind
`distill.label_weight` (README, "How the defaults were chosen"). A quality experiment, not a speed
benchmark.

It reads a finished `tandem run` folder (train mode, distill stage run): `distill/scored-groups.jsonl`
(the cross-encoder's scores of each group), `distill/config.json` and the fine-tuned bi-encoder
(`retriever/model`) with its runs (`index/{dev,test}.trec`). Settings:

- `w<W>` for each `--label-weights W`: the listwise KL to the cross-encoder plus W x the listwise NLL
  with the judged positive as target (W 0: the teacher alone);
- `labels-only` with `--control`: the teacher's scores replaced by a one-hot on the judged positive, so
  the KL is the group-wise NLL itself. Same groups, steps and start, no cross-encoder: what the extra
  training on the mined groups gives by itself.

The setting with the best dev nDCG@10 is the choice (ties go to the smaller weight); each row's test
figure is printed beside it, with paired t-tests against the fine-tuned bi-encoder and the chosen
setting, for the record only.

    .venv/bin/python -m bench.distill --run runs/scifact --dataset scifact --label-weights 0 1 2 4 --control
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.dev_grid import dev_and_test, evaluate_index, p_text, write_result
from core.data.beir import BeirDataset
from core.data.groups import TrainingGroup, read_groups
from core.data.runs import read_run
from core.data.sources import open_dataset
from pipelines.evaluation.metrics import evaluate
from pipelines.stages.training import retriever_config
from retrieval.index import build_dense_index
from retrieval.train import train_retriever

CONTROL = "labels-only"
ONE_HOT = 30.0
"""The control's teacher score of the judged positive (negatives get 0): softmax puts ~1 - 1e-12 on it."""


def labels_only(groups: list[TrainingGroup]) -> list[TrainingGroup]:
    """The groups with each teacher score replaced by a one-hot on the judged positive(s)."""
    for group in groups:
        for passage in group.positives:
            passage.teacher = ONE_HOT
        for passage in group.negatives:
            passage.teacher = 0.0
    return groups


def train_and_index(run: Path, config: dict, dataset: BeirDataset, out: Path, name: str, label_weight: float) -> Path:
    """Train one setting (skipped when its model exists) as the distill stage does, from the run's
    fine-tuned bi-encoder, and index the corpus; returns the index."""
    folder = out / name
    if not (folder / "model" / "config.json").is_file():
        groups = read_groups(run / "distill" / "scored-groups.jsonl", dataset.corpus)
        if name == CONTROL:
            groups = labels_only(groups)
        options = config["distill"]
        setting = retriever_config(
            config, str(run / "retriever" / "model"), options, groups, loss=options["loss"],
            teacher_temperature=options["teacher_temperature"], label_weight=label_weight,
        )  # fmt: skip
        started = time.perf_counter()
        summary = train_retriever(groups, setting, folder / "model")
        print(f"trained {name}: {summary['steps']} steps in {time.perf_counter() - started:.0f} s", flush=True)
    if not (folder / "index" / "meta.json").is_file():
        dense = config["dense"]
        build_dense_index(folder / "model", dataset.corpus_path, folder / "index", dense["factory"], dense["batch_size"],
                          dense["precision"])  # fmt: skip
    return folder / "index"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished `tandem run` folder (train mode)")
    parser.add_argument("--dataset", required=True, help="the run's dataset (name or BEIR folder)")
    parser.add_argument("--out", type=Path, help="models, indexes and results (default: RUN/distill-grid)")
    parser.add_argument("--label-weights", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--control", action="store_true", help=f"also the '{CONTROL}' setting (no teacher)")
    args = parser.parse_args()
    if not (args.run / "distill" / "scored-groups.jsonl").is_file():
        parser.error(f"{args.run}: no distill/scored-groups.jsonl (a train-mode run with its distill stage done)")
    out = args.out or args.run / "distill-grid"
    out.mkdir(parents=True, exist_ok=True)
    config = json.loads((args.run / "distill" / "config.json").read_text())
    dataset = open_dataset(args.dataset)
    queries, qrels = dev_and_test(dataset, args.run, config)
    baseline = {split: evaluate(read_run(args.run / "index" / f"{split}.trec"), qrels[split]) for split in qrels}

    settings = {f"w{weight:g}": weight for weight in args.label_weights}
    if args.control:
        settings[CONTROL] = 0.0
    figures = {}
    for name, weight in settings.items():
        index_dir = train_and_index(args.run, config, dataset, out, name, weight)
        figures[name] = evaluate_index(index_dir, queries, qrels, name)
        print(f"{name}: dev nDCG@10 {figures[name]['dev'].aggregate['nDCG@10']:.4f}", flush=True)
    weighted = [name for name in settings if name != CONTROL]
    chosen = max(weighted, key=lambda n: (figures[n]["dev"].aggregate["nDCG@10"], -settings[n]))

    print("\n| setting | dev nDCG@10 | test nDCG@10 | p vs fine-tuned (dev / test) | p vs chosen (dev / test) |")
    print("|---|---|---|---|---|")
    print(f"| fine-tuned, no distillation | {baseline['dev'].aggregate['nDCG@10']:.4f} | "
          f"{baseline['test'].aggregate['nDCG@10']:.4f} | — | |")  # fmt: skip
    for name, row in figures.items():
        mark = " (chosen)" if name == chosen else ""
        print(f"| {name}{mark} | {row['dev'].aggregate['nDCG@10']:.4f} | {row['test'].aggregate['nDCG@10']:.4f} | "
              f"{p_text(row, baseline, 'dev')} / {p_text(row, baseline, 'test')} | "
              f"{p_text(row, figures[chosen], 'dev')} / {p_text(row, figures[chosen], 'test')} |")  # fmt: skip
    write_result(out, chosen, figures)
    print(f"RESULT distill: label weight chosen on dev {settings[chosen]:g} ({chosen})")


if __name__ == "__main__":
    main()
