"""Standard IR metrics through ir-measures (trec_eval semantics and tie-breaking).

Two details matter for honest figures:
- ir-measures' pytrec_eval provider silently ignores the cutoff of RR@10, so we let ir-measures pick a
  provider per measure (it uses the msmarco one for RR@10) instead of forcing pytrec_eval.
- Providers break score ties differently, so each run is first put in trec_eval's order (score
  descending, then doc id descending) and scored by rank; every provider then sees the same ranking.
Queries judged in the qrels but absent from the run count as 0 (trec_eval -c), so a run cannot look
better by skipping hard queries."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import ir_measures
from ir_measures import AP, RR, R, nDCG

from core.data.beir import Qrels
from core.data.runs import Run, ranked
from core.errors import TandemError

log = logging.getLogger(__name__)

MEASURES = {"nDCG@10": nDCG @ 10, "MRR@10": RR @ 10, "Recall@100": R @ 100, "Recall@1000": R @ 1000, "MAP": AP}
"""Display name -> ir-measures measure. MRR@10 is trec_eval's recip_rank cut at 10."""


@dataclass
class Evaluation:
    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]

    @property
    def num_queries(self) -> int:
        return len(self.per_query)


def evaluate(run: Run, qrels: Qrels, measures: list[str] | None = None) -> Evaluation:
    """Score `run` against `qrels`; returns the mean and the per-query value of each measure."""
    names = measures or list(MEASURES)
    known = {name: measure_of(name) for name in names}
    judged_in_run = sum(1 for query_id in run if query_id in qrels)
    if run and not judged_in_run:
        log.warning(
            "none of the run's %d queries is judged in these qrels (e.g. '%s'), so every figure is 0: "
            "another split or another dataset's run?",
            len(run),
            next(iter(run)),
        )
    by_measure = {measure: name for name, measure in known.items()}
    evaluator = ir_measures.evaluator(list(by_measure), qrels)
    scored = [
        ir_measures.ScoredDoc(qid, doc_id, float(-rank))
        for qid, hits in run.items()
        for rank, (doc_id, _) in enumerate(ranked(hits), start=1)
    ]
    per_query: dict[str, dict[str, float]] = {}
    for metric in evaluator.iter_calc(scored):
        per_query.setdefault(metric.query_id, {})[by_measure[metric.measure]] = float(metric.value)
    count = max(len(per_query), 1)
    aggregate = {name: sum(values.get(name, 0.0) for values in per_query.values()) / count for name in names}
    return Evaluation(aggregate=aggregate, per_query=dict(sorted(per_query.items())))


def measure_of(name: str) -> ir_measures.Measure:
    """The ir-measures measure a name means: tandem's display names (MRR@10 is RR@10), or any ir-measures
    string (`nDCG@20`, `P@5`, `R@1000`, `Judged@10`, `nDCG(rel=2)@10`); anything else is an error."""
    if name in MEASURES:
        return MEASURES[name]
    try:
        return ir_measures.parse_measure(name)
    except (ValueError, NameError, TypeError, AttributeError) as err:
        raise TandemError(
            f"unknown measure '{name}' ({err}); give an ir-measures name such as nDCG@20 or P@5"
        ) from None


def format_table(rows: dict[str, dict[str, float]], measures: list[str] | None = None) -> str:
    """A fixed-width text table: one row per system, one column per measure."""
    names = measures or list(next(iter(rows.values())).keys())
    width = max([len("system"), *map(len, rows)])
    lines = ["  ".join([f"{'system':<{width}}", *(f"{name:>11}" for name in names)])]
    for system, values in rows.items():
        lines.append("  ".join([f"{system:<{width}}", *(f"{values[name]:>11.4f}" for name in names)]))
    return "\n".join(lines)
