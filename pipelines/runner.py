"""`tandem run`: every stage in order, each in DIR/<stage>/, resumable.

    bm25 -> dense-zeroshot -> retriever -> index -> mining -> reranker -> distill -> rerank -> report

A stage is finished when DIR/<stage>/done.json exists; it records the stage's configuration, its
outputs and timings. A finished stage whose configuration is unchanged is skipped; a stage that
runs (because it was unfinished, changed, or named by --force) makes every later stage run again.
Cross-encoder training checkpoints inside its stage, so an interrupted run resumes mid-training.
The stages themselves live in `pipelines/stages/`, the configuration in `pipelines/config.py`.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import BeirDataset, file_fingerprint
from core.errors import TandemError
from core.models import resolve_model
from pipelines.config import STAGES, check_types, load_config, print_config, stage_config
from pipelines.modes import choose_mode
from pipelines.plan import fit_budget, format_plan, plan_run, save_plan
from pipelines.stages import STAGE_FUNCTIONS
from pipelines.stages.context import RunContext
from pipelines.warmup import measure

__all__ = ["STAGES", "load_config", "print_config", "resumable", "run_all"]

log = logging.getLogger(__name__)


def resumable(work: Path, stage: str, wanted: dict, done: dict | None, forced: bool, upstream_ran: bool) -> bool:
    """Only an interrupted reranker stage, with the same configuration and inputs, keeps its
    checkpoints to resume from; every other stage starts from an empty folder."""
    if stage != "reranker" or done or forced or upstream_ran:
        return False
    config = work / "config.json"
    return config.is_file() and json.loads(config.read_text()) == wanted


def dataset_identity(dataset: BeirDataset, config: dict) -> dict:
    """Content fingerprints of what a run reads, so a finished stage is never reused for other data."""
    used = [split for split in (config["split"]["train"], config["split"]["test"]) if split in dataset.splits()]
    return {
        "corpus": dataset.corpus_fingerprint,
        "queries": file_fingerprint(dataset.root / "queries.jsonl"),
        "qrels": {split: file_fingerprint(dataset.root / "qrels" / f"{split}.tsv") for split in used},
    }


def run_all(
    dataset: BeirDataset,
    out: Path,
    config: dict,
    force: list[str] = (),
    show_plan: bool = False,
    budget: float | None = None,
    plan_only: bool = False,
) -> list[str]:
    """Run the stages in order; returns the names of the stages that ran (the rest were skipped).
    `show_plan` prints each stage's size and estimated time first (from a short warm-up); `budget`
    (seconds) skips distillation, then cuts training steps and rerank depth so the estimate fits
    (`fit_budget`); `plan_only` stops after the plan."""
    unknown = set(force) - set(STAGES)
    if unknown:
        raise TandemError(f"--force: unknown stage(s) {sorted(unknown)}; stages: {', '.join(STAGES)}")
    check_types(config)  # options set in code, not only in config files, fail before the first stage
    resolve_model(config["dense"]["model"])  # fail early on a bad model path
    test_split = config["split"]["test"]
    if test_split not in dataset.splits():
        raise TandemError(f"{dataset.root}: no qrels/{test_split}.tsv to evaluate on (split.test)")
    mode, why, transferred = choose_mode(dataset, config)
    ctx = RunContext(dataset, out, config, mode, why, transferred)
    if show_plan or budget or plan_only:
        config = copy.deepcopy(config)
        ctx.config = config
        rates = measure(dataset, config, mode)
        plans = plan_run(dataset, config, mode, rates, ctx.bi_encoder() is not None, len(ctx.rerankers()))
        cuts = fit_budget(config, plans, budget) if budget else []
        print(f"plan for {dataset.name} (mode {mode}: {why}):\n{format_plan(plans, rates, budget)}", flush=True)
        if plan_only:
            return []
        out.mkdir(parents=True, exist_ok=True)
        save_plan(out / "plan.json", plans, rates, cuts)
    out.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(out), log_to_file(out / "run.log"):
        log.info("%s: mode %s (%s)", dataset.name, mode, why)
        return _run_stages(ctx, force)


@contextlib.contextmanager
def exclusive_lock(out: Path) -> Iterator[None]:
    """One `tandem run` per folder at a time: a second one stops at once and says who holds it."""
    handle = open(out / ".lock", "a+")  # noqa: SIM115 (held for the whole run)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise TandemError(f"{out} is in use by {holder}; wait for it or choose another --out") from None
    handle.truncate(0)
    handle.write(f"tandem run (pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
    handle.flush()
    try:
        yield
    finally:
        handle.truncate(0)
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


@contextlib.contextmanager
def log_to_file(path: Path) -> Iterator[None]:
    """Copy the run's log (stage decisions, ~30 s progress lines off a terminal) into `path`."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.setLevel(min(level, logging.INFO) if level else logging.NOTSET)  # the file always gets INFO
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def _run_stages(ctx: RunContext, force: list[str]) -> list[str]:
    config, identity = ctx.config, dataset_identity(ctx.dataset, ctx.config)
    ran: list[str] = []
    for stage in STAGES:
        wanted = {**stage_config(config, stage, ctx.mode), "mode": ctx.mode, "dataset": identity}
        done = ctx.done(stage)
        if done and not ran and stage not in force and done["config"] == wanted:
            log.info("stage %s: finished earlier, skipped", stage)
            continue
        reason = (
            "forced"
            if stage in force
            else "upstream stage re-ran"
            if ran
            else "configuration changed"
            if done
            else "not finished"
        )
        log.info("stage %s: running (%s)", stage, reason)
        work = ctx.stage_dir(stage)
        if not resumable(work, stage, wanted, done, forced=stage in force, upstream_ran=bool(ran)):
            shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True, exist_ok=True)
        (work / "config.json").write_text(json.dumps(wanted, indent=2) + "\n")
        started = time.perf_counter()
        result = STAGE_FUNCTIONS[stage](ctx, work)
        with atomic_file(work / "done.json") as marker:
            json.dump(
                {"config": wanted, "seconds": time.perf_counter() - started, "result": result},
                marker,
                indent=2,
                default=str,
            )
        ran.append(stage)
    return ran
