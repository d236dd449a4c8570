"""The distillation stage: the loop bi-encoder -> mining -> cross-encoder -> bi-encoder closed once.

The trained cross-encoder scores the passages of the mined groups (the fine-tuned bi-encoder's own hard
negatives plus BM25's); the fine-tuned bi-encoder then trains on to match those scores (listwise KL,
RocketQAv2; or MarginMSE) and re-indexes the corpus. Its runs sit beside the other first stages, and the
report keeps it as its own system ("dense distilled") so the dev split decides whether it is used."""

from __future__ import annotations

from pathlib import Path

from core.data.beir import Corpus
from core.data.groups import MINED_GROUPS, TrainingGroup, read_groups, write_groups
from core.data.runs import read_run
from pipelines.estimate import StagePlan, Workload, training_steps
from pipelines.evaluation.metrics import evaluate
from pipelines.stages.context import RunContext, SystemRuns, first_stage_system, skipped
from pipelines.stages.dense_zeroshot import dense_stage_runs
from pipelines.stages.reranker import reranker_dev_score
from pipelines.stages.retriever import retriever_config
from rerank.model import CrossEncoder
from rerank.teacher import score_groups
from retrieval.train import train_retriever


def teacher_label(ctx: RunContext) -> str:
    """The cross-encoder that teaches: `distill.teacher` when this run trained it, else the first one."""
    rerankers = ctx.rerankers()
    wanted = ctx.config["distill"]["teacher"]
    return wanted if wanted in rerankers else next(iter(rerankers))


def teacher_scored(groups_path: Path, corpus: Corpus, teacher: str, options: dict) -> list[TrainingGroup]:
    """The groups at `groups_path`, each cut to its top `num_negatives` negatives, with the `teacher`
    cross-encoder's score stored on every passage (`options`: the `distill` section)."""
    groups = read_groups(groups_path, corpus)
    for group in groups:
        group.negatives = group.negatives[: options["num_negatives"]]
    model = CrossEncoder.from_pretrained(teacher).to_device()
    return score_groups(groups, model, options["batch_size"], options["precision"])


def stage_distill(ctx: RunContext, work: Path) -> dict:
    """Score the mined groups' top negatives with the cross-encoder, train the fine-tuned bi-encoder on to
    match them, and index the corpus with it (test and dev runs as the other dense stages write them)."""
    options = ctx.config["distill"]
    if not options["enabled"]:
        return skipped("distill.enabled is false")
    if ctx.mode != "train" or not ctx.rerankers():
        return skipped(
            f"distillation needs a bi-encoder and a cross-encoder trained on train queries ({ctx.mode} mode)"
        )
    label = teacher_label(ctx)
    teacher_dev, student_dev = dev_comparison(ctx, ctx.rerankers()[label])
    if teacher_dev is not None and teacher_dev <= student_dev:
        return skipped(
            f"the cross-encoder ({label}) ranks dev no better than the bi-encoder it would teach (nDCG@10 "
            f"{teacher_dev:.4f} reranking the hybrid's top {ctx.config['reranker']['eval_depth']} against "
            f"{student_dev:.4f}): its scores would pull the student down"
        )
    groups = teacher_scored(ctx.stage_dir("mining") / MINED_GROUPS, ctx.dataset.corpus, ctx.rerankers()[label], options)
    write_groups(groups, work / "scored-groups.jsonl")
    config = retriever_config(
        ctx.config,
        ctx.bi_encoder(),
        options,
        groups,
        loss=options["loss"],
        teacher_temperature=options["teacher_temperature"],
        label_weight=options["label_weight"],
    )
    summary = train_retriever(groups, config, work / "model")
    runs = dense_stage_runs(ctx, work, str(work / "model"))
    return {"teacher": label, "teacher_dev": teacher_dev, "student_dev": student_dev, "training": summary, **runs}


def dev_comparison(ctx: RunContext, teacher: str) -> tuple[float | None, float | None]:
    """Dev nDCG@10 of the teacher (reranking the hybrid's top `reranker.eval_depth`) and of the student
    (the fine-tuned bi-encoder's dev run), or (None, None) without a dev split. A teacher that does not
    beat its student on dev has nothing to teach it: on NFCorpus such a teacher's near-flat scores made
    the distilled bi-encoder's embeddings collapse."""
    if not ctx.dev_queries():
        return None, None
    score = reranker_dev_score(ctx)
    teacher_dev = score(CrossEncoder.from_pretrained(teacher).to_device())
    student = evaluate(read_run(ctx.stage_dir(ctx.dense_stage()) / "dev.trec"), ctx.dev_qrels(), ["nDCG@10"])
    return teacher_dev, student.aggregate["nDCG@10"]


def estimate_distill(w: Workload) -> StagePlan:
    """Scoring the mined groups, training steps (costed as bi-encoder steps scaled by the passages per step;
    measured on SciFact this still came out low: 40.6 s per 256-passage step against 26 s scaled from a
    64-passage one) and re-encoding the corpus."""
    options, retriever = w.config["distill"], w.config["retriever"]
    if not (options["enabled"] and w.mode == "train" and w.rerankers):
        return StagePlan("distill", "skipped", 0)
    pairs = w.train_queries * (1 + options["num_negatives"])
    steps = training_steps(w.train_queries, options)
    per_step = (options["batch_queries"] * options["group_size"]) / (
        retriever["batch_queries"] * retriever["group_size"]
    )
    seconds = (
        w.rates.score_seconds(pairs)
        + w.rates.score_quantise_s
        + steps * per_step * w.rates.retriever_step_s
        + w.index_seconds(retriever["passage_max_length"])
    )
    return StagePlan(
        "distill", f"score {pairs:,} pairs, {steps:,} steps, encode {w.passages:,} passages", seconds, steps
    )


def systems_distill(ctx: RunContext) -> list[SystemRuns]:
    """The distilled bi-encoder, tested against the one it was trained from (when the stage indexed)."""
    if not ctx.distilled():
        return []
    return [first_stage_system(ctx, "distill", first_stage=ctx.dense_name())]
