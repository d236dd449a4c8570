"""`tandem run`: every stage in order, each in DIR/<stage>/, resumable.

    bm25 -> dense-zeroshot -> retriever -> index -> mining -> reranker -> rerank -> report

A stage is finished when DIR/<stage>/done.json exists; it records the stage's configuration, its
outputs and timings. A finished stage whose configuration is unchanged is skipped; a stage that
runs (because it was unfinished, changed, or named by --force) makes every later stage run again.
Cross-encoder training checkpoints inside its stage, so an interrupted run resumes mid-training.
The stages themselves live in `pipelines/stages/`, the configuration in `pipelines/config.py`.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import BeirDataset
from core.errors import TandemError
from core.models import resolve_model
from pipelines.config import STAGES, load_config, print_config, stage_config
from pipelines.stages import STAGE_FUNCTIONS
from pipelines.stages.context import RunContext

__all__ = ["STAGES", "load_config", "print_config", "resumable", "run_all"]

log = logging.getLogger(__name__)


def resumable(work: Path, stage: str, wanted: dict, done: dict | None, forced: bool, upstream_ran: bool) -> bool:
    """Only an interrupted reranker stage, with the same configuration and inputs, keeps its
    checkpoints to resume from; every other stage starts from an empty folder."""
    if stage != "reranker" or done or forced or upstream_ran:
        return False
    config = work / "config.json"
    return config.is_file() and json.loads(config.read_text()) == wanted


def run_all(dataset: BeirDataset, out: Path, config: dict, force: list[str] = ()) -> list[str]:
    """Run the stages in order; returns the names of the stages that ran (the rest were skipped)."""
    unknown = set(force) - set(STAGES)
    if unknown:
        raise TandemError(f"--force: unknown stage(s) {sorted(unknown)}; stages: {', '.join(STAGES)}")
    resolve_model(config["dense"]["model"])  # fail early on a bad model path
    ctx = RunContext(dataset, out, config)
    out.mkdir(parents=True, exist_ok=True)
    ran: list[str] = []
    for stage in STAGES:
        wanted = stage_config(config, stage)
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
