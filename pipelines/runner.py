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
import time
from collections.abc import Iterator
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import BeirDataset, file_fingerprint
from core.data.splits import official_dev_split
from core.errors import TandemError
from core.models import model_identity, resolve_model
from core.outputs import check_folder_output, claim_folder, remove_owned
from pipelines.config import check_types, load_config, print_config, stage_config
from pipelines.modes import Models, choose_mode
from pipelines.plan import fit_budget, format_plan, plan_run, save_plan
from pipelines.stages import BY_NAME, STAGE_NAMES
from pipelines.stages.context import RunContext
from pipelines.warmup import warmup_rates

__all__ = ["STAGES", "load_config", "print_config", "resumable", "run_all"]

STAGES = STAGE_NAMES
"""The stages' names, in order (declared in `pipelines.stages`)."""

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
    splits = (config["split"]["train"], config["split"]["test"], official_dev_split(dataset, config["split"]))
    used = [split for split in splits if split in dataset.splits()]
    return {
        "corpus": dataset.corpus_fingerprint,
        "queries": file_fingerprint(dataset.root / "queries.jsonl"),
        "qrels": {split: file_fingerprint(dataset.root / "qrels" / f"{split}.tsv") for split in used},
    }


def model_identities(config: dict, transferred: Models) -> dict[str, dict[str, str]]:
    """Config section -> {option: content identity} of each model the section names (`model_identity`),
    so a stage whose start or transferred model was replaced at the same path runs again. `run` holds the
    models `--models-from` brings."""
    identities = {
        "dense": {"model": model_identity(config["dense"]["model"])},
        "reranker": {"model": model_identity(config["reranker"]["model"])},
    }
    if config["retriever"]["model"]:
        identities["retriever"] = {"model": model_identity(config["retriever"]["model"])}
    if config["run"]["models_from"]:
        models = {"bi_encoder": transferred.bi_encoder, **transferred.rerankers}
        identities["run"] = {name: model_identity(path) for name, path in models.items() if path}
    return identities


def run_all(
    dataset: BeirDataset,
    out: Path,
    config: dict,
    force: list[str] = (),
    show_plan: bool = False,
    budget: float | None = None,
    plan_only: bool = False,
    fresh_warmup: bool = False,
) -> list[str]:
    """Run the stages in order; returns the names of the stages that ran (the rest were skipped).
    `show_plan` prints each stage's size and estimated time first (from a short warm-up); `budget`
    (seconds) skips distillation, then cuts training steps and rerank depth so the estimate fits
    (`fit_budget`); `plan_only` stops after the plan. The warm-up's rates come from the cache when this
    machine timed the same job before, unless `fresh_warmup`."""
    unknown = set(force) - set(STAGE_NAMES)
    if unknown:
        raise TandemError(f"--force: unknown stage(s) {sorted(unknown)}; stages: {', '.join(STAGE_NAMES)}")
    check_types(config)  # options set in code, not only in config files, fail before the first stage
    resolve_model(config["dense"]["model"])  # fail early on a bad model path
    test_split = config["split"]["test"]
    if test_split not in dataset.splits():
        raise TandemError(f"{dataset.root}: no qrels/{test_split}.tsv to evaluate on (split.test)")
    check_run_folder(out, dataset, replace_other=set(force) >= set(STAGE_NAMES))
    mode, why, transferred = choose_mode(dataset, config)
    ctx = RunContext(dataset, out, config, mode, why, transferred)
    if show_plan and not budget and not plan_only and not pending_stages(ctx, force):
        show_plan = False  # a finished run: nothing to plan, so no warm-up
    if show_plan or budget or plan_only:
        config = copy.deepcopy(config)
        ctx.config = config
        pending = pending_stages(ctx, force)
        rates = warmup_rates(dataset, config, mode, pending, fresh=fresh_warmup)
        plans = plan_run(dataset, config, mode, rates, ctx.bi_encoder() is not None, len(ctx.rerankers()))
        for plan in plans:  # a budget cuts only what is left to run
            if plan.stage not in pending:
                plan.work, plan.seconds, plan.steps = "finished earlier", 0.0, 0
        cuts = fit_budget(config, plans, budget) if budget else []
        plan_text = f"plan for {dataset.name} (mode {mode}: {why}):\n{format_plan(plans, rates, budget)}"
        print(plan_text, flush=True)
        if plan_only:
            return []
        claim_folder(out, "run", dataset=dataset.name, corpus=dataset.corpus_fingerprint)
        save_plan(out / "plan.json", plans, rates, cuts)
    claim_folder(out, "run", dataset=dataset.name, corpus=dataset.corpus_fingerprint)
    with exclusive_lock(out), log_to_file(out / "run.log"):
        log.info("%s: mode %s (%s)", dataset.name, mode, why)
        if show_plan or budget:
            log_to_file_only(plan_text)
        warn_about_test_queries_in_training(ctx)
        return _run_stages(ctx, force)


def check_run_folder(out: Path, dataset: BeirDataset, replace_other: bool = False) -> None:
    """Refuse `out` as this dataset's run folder before any work: a folder holding files tandem did not
    write, one in or around the dataset folder, or another dataset's run (whose results the stages would
    replace) unless `replace_other` (every stage forced). The same dataset with an edited corpus is not
    another dataset: its stages re-run, as their fingerprints say."""
    marker = check_folder_output(out, "run", dataset.protected)
    if marker is None or replace_other:
        return
    if marker.get("dataset"):
        other = marker["dataset"] if marker["dataset"] != dataset.name else None
    else:  # a run folder from before markers: its stages recorded the corpus they read
        corpus = _legacy_run_corpus(out)
        other = f"another corpus ({corpus[:12]})" if corpus and corpus != dataset.corpus_fingerprint else None
    if other:
        raise TandemError(
            f"--out {out} holds the results of a run on {other}, not on {dataset.name}: running here would replace "
            "them; choose another --out, or pass --force alone (every stage) to replace them"
        )


def _legacy_run_corpus(out: Path) -> str | None:
    """The corpus fingerprint a run folder from before ownership markers recorded in its stages."""
    for stage in STAGE_NAMES:
        try:
            return json.loads((out / stage / "config.json").read_text())["dataset"]["corpus"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return None


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


def log_to_file_only(text: str) -> None:
    """Write `text` into run.log (it was printed already): the plan, so the log says what was expected."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.stream.write(text + "\n")
            handler.flush()


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


def warn_about_test_queries_in_training(ctx: RunContext) -> None:
    """A train split that also judges test (or dev) queries trains on what it is scored on: say so."""
    if not ctx.trains or ctx.mode != "train":
        return
    trained = set(ctx.train_queries())
    for split, queries in (
        ("test", ctx.dataset.split_queries(ctx.config["split"]["test"])),
        ("dev", ctx.dev_queries()),
    ):
        shared = sorted(trained & set(queries))
        if shared:
            log.warning(
                "%d of the %d %s queries are also train queries (e.g. '%s'): the models train on queries they "
                "are scored on, so their %s figures are optimistic",
                len(shared),
                len(queries),
                split,
                shared[0],
                split,
            )


def wanted_configs(ctx: RunContext) -> dict[str, dict]:
    """What each stage's done.json must record for the stage to be reused: its configuration slice, the
    mode, and the content identity of the data and models it reads."""
    identity = dataset_identity(ctx.dataset, ctx.config)
    models = model_identities(ctx.config, ctx.transferred)
    wanted = {}
    for stage in STAGE_NAMES:
        sections = stage_config(ctx.config, stage, ctx.mode)
        used = {section: models[section] for section in sections if section in models}
        wanted[stage] = {**sections, "mode": ctx.mode, "dataset": identity, "models": used}
        if BY_NAME[stage].version > 1:
            wanted[stage]["version"] = BY_NAME[stage].version
    return wanted


def pending_stages(ctx: RunContext, force: list[str], wanted: dict[str, dict] | None = None) -> list[str]:
    """The stages a run will run: from the first one that is forced, unfinished or changed, every one after."""
    wanted = wanted or wanted_configs(ctx)
    for index, stage in enumerate(STAGE_NAMES):
        done = ctx.done(stage)
        if stage in force or not done or done["config"] != wanted[stage]:
            return STAGE_NAMES[index:]
    return []


def _run_stages(ctx: RunContext, force: list[str]) -> list[str]:
    wanted_by_stage = wanted_configs(ctx)
    pending = pending_stages(ctx, force, wanted_by_stage)
    ran: list[str] = []
    for stage in STAGE_NAMES:
        wanted, done = wanted_by_stage[stage], ctx.done(stage)
        if stage not in pending:
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
        run_stage(
            ctx, stage, wanted, resume=resumable(ctx.stage_dir(stage), stage, wanted, done, stage in force, bool(ran))
        )
        ran.append(stage)
    return ran


def run_stage(ctx: RunContext, stage: str, wanted: dict, resume: bool = False) -> None:
    """Run one stage into its folder (emptied first unless `resume`) and mark it done with `wanted`, the
    configuration its done.json records."""
    work = ctx.stage_dir(stage)
    if not resume:
        remove_owned(work, "stage")  # a folder tandem did not write is refused, never deleted
    claim_folder(work, "stage", stage=stage)
    (work / "config.json").write_text(json.dumps(wanted, indent=2) + "\n")
    started = time.perf_counter()
    result = BY_NAME[stage].run(ctx, work)
    with atomic_file(work / "done.json") as marker:
        json.dump(
            {"config": wanted, "seconds": time.perf_counter() - started, "result": result},
            marker,
            indent=2,
            default=str,
        )
    log.info("stage %s: finished in %.0f s", stage, time.perf_counter() - started)
