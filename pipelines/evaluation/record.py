"""A run's record (`report/record.json`): what was run, on what, how long it took and what it scored, so
that publishing a run is copying one file into `results/` (where the README's tables are rendered from)."""

from __future__ import annotations

import datetime
import resource
import sys

from pipelines.evaluation.provenance import commit, machine, process_seconds, versions
from pipelines.evaluation.report import TABLE_MEASURES, System, paired_p_value


def invoked_command() -> str | None:
    """The command line that made this process: `tandem ...` from the console script, `python -m MODULE ...`
    from a module run as a script (e.g. `experiments.replay_stages`, which writes records too)."""
    if not sys.argv:
        return None
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None and spec.name != "pipelines.cli" else "tandem"
    return " ".join([program, *sys.argv[1:]])


def figures(system: System) -> dict:
    """A system's test (and dev) figures, its p-values against BM25 and against what it builds on."""
    return {
        "test": {m: round(system.evaluation.aggregate[m], 4) for m in TABLE_MEASURES},
        "dev": {m: round(system.dev.aggregate[m], 4) for m in TABLE_MEASURES} if system.dev else None,
        "first_stage": system.first_stage,
    }


def run_record(dataset: str, mode: str, systems: list[System], result: str, stage_seconds: dict) -> dict:
    """The record of a finished run: command, commit, date, machine, versions, times (each stage's, and this
    process's wall time: the whole run's when it ran in one go), peak memory, and per system its dev and
    test figures with paired p-values (two-sided t-test on per-query nDCG@10)."""
    by_name = {s.name: s for s in systems}
    bm25 = by_name.get("BM25")
    entries = {}
    for system in systems:
        entry = figures(system)
        entry["p_vs_bm25"] = paired_p_value(system.evaluation, bm25.evaluation) if bm25 and system is not bm25 else None
        first = by_name.get(system.first_stage or "")
        entry["p_vs_first_stage"] = paired_p_value(system.evaluation, first.evaluation) if first else None
        entries[system.name] = entry
    return {
        "command": invoked_command(),
        "dataset": dataset,
        "mode": mode,
        "commit": commit(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine(),
        "versions": versions(),
        "process_seconds": round(process_seconds() or 0) or None,
        "stage_seconds": {stage: round(seconds) for stage, seconds in stage_seconds.items()},
        "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "result": result,
        "systems": entries,
    }
