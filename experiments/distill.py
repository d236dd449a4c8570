"""The distill stage's label weight and schedule chosen on dev, with a control that has no teacher. Each
setting retrains the run's distill stage from its fine-tuned bi-encoder on the same scored groups, steps
and seed, indexes the corpus, and is scored on the dev queries the run held out. The experiment behind
`distill.label_weight`, `distill.teacher_temperature` and `distill.batch_queries` (README, "How the
defaults were chosen"). A quality experiment, not a speed benchmark.

It reads a finished `tandem run` folder (train mode, distill stage run): `distill/scored-groups.jsonl`
(the cross-encoder's scores of each group), `distill/config.json` and the fine-tuned bi-encoder
(`retriever/model`) with its runs (`index/{dev,test}.trec`). Settings:

- `w<W>` for each `--label-weights W`: the listwise KL to the cross-encoder plus W x the listwise NLL
  with the judged positive as target (W 0: the teacher alone);
- `labels-only` with `--control`: the teacher's scores replaced by a one-hot on the judged positive, so
  the KL is the group-wise NLL itself. Same groups, steps and start, no cross-encoder: what the extra
  training on the mined groups gives by itself;
- with `--titles`, each setting again as `<setting>+titles`: the run's title pseudo-query groups
  (`mining/title-groups.jsonl`, top negatives as the stage keeps them) scored by the same cross-encoder
  (cached in `OUT/title-scored-groups.jsonl`) join the train groups, so the epoch is longer;
- with `--teacher CE`, every setting learns from another cross-encoder's scores of the run's mined groups
  (scored as the stage scores them, cached in `OUT/scored-groups.jsonl`), e.g. one trained longer;
- `--teacher-temperature`, `--batch-queries`, `--epochs`, `--seed`: every setting with that distill option
  changed (the grid goes to a folder named after the change, e.g. RUN/distill-grid-teacher_temperature2).

The setting with the best dev nDCG@10 is the choice (ties go to the smaller weight); each row's test
figure is printed beside it, with paired t-tests against the fine-tuned bi-encoder and the chosen
setting, for the record only.

    .venv/bin/python -m experiments.distill --run runs/scifact --dataset scifact --label-weights 0 1 2 4 --control
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from core.data.beir import BeirDataset
from core.data.groups import TrainingGroup, read_groups, write_groups
from core.data.runs import read_run
from core.data.sources import open_dataset
from experiments.dev_grid import dev_and_test, evaluate_index, p_text, write_result
from experiments.dev_grid import train_and_index as train_and_index_setting
from pipelines.evaluation.metrics import evaluate
from pipelines.stages.context import RunContext
from pipelines.stages.distill import teacher_label, teacher_scored
from pipelines.stages.retriever import retriever_config
from retrieval.train import RetrieverConfig

CONTROL = "labels-only"
TITLES = "+titles"
SCHEDULE = [
    ("--teacher-temperature", "teacher_temperature", float),
    ("--batch-queries", "batch_queries", int),
    ("--epochs", "epochs", float),
    ("--seed", "seed", int),
]
"""The distill options a grid may change for all its settings (flag, `distill` key, type)."""
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


def apply_schedule(config: dict, overrides: dict) -> str:
    """Set the given (not None) `distill` options in `config`; returns the grid folder's suffix naming them."""
    given = {key: value for key, value in overrides.items() if value is not None}
    config["distill"].update(given)
    return "".join(f"-{key}{value:g}" for key, value in given.items())


def run_teacher(run: Path, config: dict, dataset: BeirDataset) -> Path:
    """The cross-encoder the run's distill stage learned from."""
    ctx = RunContext(dataset, run, config)
    return Path(ctx.rerankers()[teacher_label(ctx)])


def scored_groups(
    source: Path, teacher_dir: Path, config: dict, dataset: BeirDataset, cache: Path
) -> list[TrainingGroup]:
    """`source`'s groups scored by `teacher_dir` as the distill stage scores them; cached at `cache`."""
    if not cache.is_file():
        started = time.perf_counter()
        groups = teacher_scored(source, dataset.corpus, str(teacher_dir), config["distill"])
        print(f"scored {len(groups)} groups of {source.name} in {time.perf_counter() - started:.0f} s", flush=True)
        write_groups(groups, cache)
    return read_groups(cache, dataset.corpus)


def setting_groups(run: Path, config: dict, dataset: BeirDataset, out: Path, name: str, teacher: Path | None) -> list:
    """A setting's training groups: the run's scored groups (or the mined ones scored by `teacher`), plus
    the scored title groups for a `+titles` setting, one-hot for the control."""
    if teacher is None:
        groups = read_groups(run / "distill" / "scored-groups.jsonl", dataset.corpus)
    else:
        groups = scored_groups(run / "mining" / "groups.jsonl", teacher, config, dataset, out / "scored-groups.jsonl")
    if name.endswith(TITLES):
        cache = out / "title-scored-groups.jsonl"
        groups += scored_groups(run / "mining" / "title-groups.jsonl", teacher or run_teacher(run, config, dataset), config,
                                dataset, cache)  # fmt: skip
    return labels_only(groups) if name.startswith(CONTROL) else groups


def train_and_index(
    run: Path, config: dict, dataset: BeirDataset, out: Path, name: str, label_weight: float, teacher: Path | None
) -> Path:
    """Train one setting (skipped when its model exists) as the distill stage does, from the run's
    fine-tuned bi-encoder, and index the corpus; returns the index."""

    def training() -> tuple[list, RetrieverConfig]:
        groups, options = setting_groups(run, config, dataset, out, name, teacher), config["distill"]
        return groups, retriever_config(
            config, str(run / "retriever" / "model"), options, groups, loss=options["loss"],
            teacher_temperature=options["teacher_temperature"], label_weight=label_weight,
        )  # fmt: skip

    dense = config["dense"]
    return train_and_index_setting(out / name, training, dataset.corpus_path, dense, dense["factory"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a finished `tandem run` folder (train mode)")
    parser.add_argument("--dataset", required=True, help="the run's dataset (name or BEIR folder)")
    parser.add_argument("--out", type=Path, help="models, indexes and results (default: RUN/distill-grid)")
    parser.add_argument("--label-weights", type=float, nargs="+", default=[0.0, 1.0, 2.0])
    parser.add_argument("--control", action="store_true", help=f"also the '{CONTROL}' setting (no teacher)")
    parser.add_argument("--titles", action="store_true", help=f"each setting also as '<setting>{TITLES}'")
    parser.add_argument("--teacher", type=Path, help="another cross-encoder to score the run's mined groups with "
                        "(default: the run's own scores); its grid goes to RUN/distill-grid-<folder name>")  # fmt: skip
    for flag, key, kind in SCHEDULE:
        parser.add_argument(flag, type=kind, help=f"every setting with this `distill.{key}` (default: the run's); "
                            f"the grid's folder gets a -{key}<value> suffix")  # fmt: skip
    args = parser.parse_args()
    if not (args.run / "distill" / "scored-groups.jsonl").is_file():
        parser.error(f"{args.run}: no distill/scored-groups.jsonl (a train-mode run with its distill stage done)")
    config = json.loads((args.run / "distill" / "config.json").read_text())
    suffix = apply_schedule(config, {key: getattr(args, key) for _, key, _ in SCHEDULE})
    out = args.out or args.run / ("distill-grid" + (f"-{args.teacher.name}" if args.teacher else "") + suffix)
    out.mkdir(parents=True, exist_ok=True)
    dataset = open_dataset(args.dataset)
    queries, qrels = dev_and_test(dataset, args.run, config)
    baseline = {split: evaluate(read_run(args.run / "index" / f"{split}.trec"), qrels[split]) for split in qrels}

    settings = {f"w{weight:g}": weight for weight in args.label_weights}
    if args.control:
        settings[CONTROL] = 0.0
    if args.titles:
        settings.update({name + TITLES: weight for name, weight in settings.items()})
    figures = {}
    for name, weight in settings.items():
        index_dir = train_and_index(args.run, config, dataset, out, name, weight, args.teacher)
        figures[name] = evaluate_index(index_dir, queries, qrels, name)
        print(f"{name}: dev nDCG@10 {figures[name]['dev'].aggregate['nDCG@10']:.4f}", flush=True)
    weighted = [name for name in settings if not name.startswith(CONTROL)]
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
