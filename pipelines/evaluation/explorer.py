"""report/index.html: the report as one self-contained page (data and script inside, no server, no
network) with a per-query explorer: pick two systems, see the queries ordered by how much the second
gains or loses against the first, and for a query both top-10 lists side by side with titles, a snippet,
each passage's judged grade and its rank in the other list."""

from __future__ import annotations

import html
import json
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import Corpus, Qrels
from core.data.runs import read_run
from pipelines.evaluation.report import TABLE_MEASURES, System, holm, paired_p_value

TOP = 10
"""Hits per query the explorer shows for each system."""
SNIPPET = 110
"""Characters of a passage's text shown under its title (the page stays small: under 1 MB for SciFact)."""


def explorer_data(
    title: str, systems: list[System], baseline: str, result: str | None, qrels: Qrels,
    queries: dict[str, str], corpus: Corpus,
) -> dict:  # fmt: skip
    """What the page shows, compactly: systems with their figures, per-query nDCG@10, each system's top 10
    per query as indices into one table of passages, and the grades of the judged ones."""
    base = next((s for s in systems if s.name == baseline), None)
    raw = {s.name: paired_p_value(s.evaluation, base.evaluation) if base and s is not base else None for s in systems}
    adjusted = holm(raw)
    query_ids = sorted({q for s in systems for q in s.evaluation.per_query})
    docs: dict[str, int] = {}
    tops = []
    for system in systems:
        run = read_run(system.run_file) if system.run_file else {}
        tops.append([[docs.setdefault(doc_id, len(docs)) for doc_id, _ in run.get(q, [])[:TOP]] for q in query_ids])
    passages = []
    for doc_id in docs:
        if doc_id in corpus:
            i = corpus.position[doc_id]
            passages.append([doc_id, corpus.titles[i][:90], corpus.texts[i][:SNIPPET]])
        else:
            passages.append([doc_id, "", ""])
    grades = {q: {str(docs[d]): g for d, g in qrels.get(q, {}).items() if d in docs} for q in query_ids}
    return {
        "title": title,
        "baseline": baseline,
        "result": result,
        "measures": list(TABLE_MEASURES),
        "systems": [
            {
                "name": s.name,
                "firstStage": s.first_stage,
                "dev": round(s.dev.aggregate["nDCG@10"], 4) if s.dev else None,
                "test": {m: round(s.evaluation.aggregate[m], 4) for m in TABLE_MEASURES},
                "p": raw[s.name],
                "holm": adjusted[s.name],
                "ndcg": [round(s.evaluation.per_query.get(q, {}).get("nDCG@10", 0.0), 4) for q in query_ids],
            }
            for s in systems
        ],
        "queries": [[q, queries.get(q, "")] for q in query_ids],
        "judged": [sum(1 for g in qrels.get(q, {}).values() if g > 0) for q in query_ids],
        "docs": passages,
        "top": tops,
        "grades": [grades[q] for q in query_ids],
    }


def write_explorer(path: Path, data: dict) -> Path:
    """Write the page: the template with `data` embedded (as JSON inside a script element)."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")
    page = TEMPLATE.replace("__TITLE__", html.escape(data["title"])).replace("__DATA__", payload)
    with atomic_file(path) as out:
        out.write(page)
    return path


TEMPLATE = (Path(__file__).with_name("explorer.html")).read_text(encoding="utf-8")
