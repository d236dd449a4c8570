"""The HTML report (report/index.html) in a real headless Chromium: the systems table sorts, two systems
can be picked, the query with the largest loss comes first, and its two top-10 lists, grades and rank
cross-references are those of the run files and qrels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from core.data.beir import BeirDataset
from core.data.runs import read_run
from pipelines.cli import main
from tests.webdriver import Browser


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, tiny_bert: Path) -> Path:
    """A `tandem run --quick` of the tiny collection without train qrels (zero-shot: three systems)."""
    root = tmp_path_factory.mktemp("explorer")
    data = root / "tiny-notrain"
    shutil.copytree(Path(__file__).resolve().parent.parent / "data" / "tiny", data)
    (data / "qrels" / "train.tsv").unlink()
    config = root / "c.yaml"
    config.write_text(yaml.safe_dump({"dense": {"model": str(tiny_bert)}}))
    out = root / "run"
    assert main(["run", "--dataset", str(data), "--out", str(out), "--config", str(config), "--quick"]) == 0
    return out


def test_the_report_page_is_self_contained_and_small(finished_run: Path) -> None:
    page = (finished_run / "report" / "index.html").read_text()
    assert "<script src" not in page and "<link" not in page and "http://" not in page and "https://" not in page
    assert len(page.encode()) < 1_000_000
    assert "[index.html](index.html)" in (finished_run / "report" / "report.md").read_text()


def test_the_explorer_in_chromium_matches_the_runs_and_qrels(finished_run: Path) -> None:
    metrics = json.loads((finished_run / "report" / "metrics.json").read_text())["systems"]
    qrels = BeirDataset(finished_run.parent / "tiny-notrain").qrels("test")
    runs = {"BM25": read_run(finished_run / "bm25" / "test.trec"),
            "dense zero-shot": read_run(finished_run / "dense-zeroshot" / "test.trec")}  # fmt: skip
    browser = Browser()
    try:
        browser.open(finished_run / "report" / "index.html")
        rows = browser.css("#systems tbody tr")
        assert [row.attribute("data-system") for row in rows] == list(metrics)
        header = next(th for th in browser.css("#systems th") if th.attribute("data-column") == "nDCG@10")
        header.click()
        shown = [row.attribute("data-system") for row in browser.css("#systems tbody tr")]
        assert shown == sorted(metrics, key=lambda name: -metrics[name]["nDCG@10"])
        next(th for th in browser.css("#systems th") if th.attribute("data-column") == "nDCG@10").click()
        shown = [row.attribute("data-system") for row in browser.css("#systems tbody tr")]
        assert shown == sorted(metrics, key=lambda name: metrics[name]["nDCG@10"])

        first, against = "dense zero-shot", "BM25"
        next(o for o in browser.css("#systemA option") if o.text == first).click()
        next(o for o in browser.css("#systemB option") if o.text == against).click()
        per_query = {name: metrics[name]["per_query_nDCG@10"] for name in (first, against)}
        loss = {q: per_query[against][q] - per_query[first][q] for q in per_query[first]}
        top_row = browser.css("#queries tbody tr")[0]
        query = top_row.attribute("data-query")
        assert loss[query] == min(loss.values()) < 0  # the largest loss comes first
        top_row.click()
        lists = {
            side.attribute("data-side"): [
                (hit.attribute("data-doc"), hit.attribute("data-grade"), hit.attribute("data-other-rank"))
                for hit in browser.css(".hit", within=side)
            ]
            for side in browser.css("#detail .lists > div")
        }
    finally:
        browser.close()
    expected = {
        side: [doc for doc, _ in runs[name][query][:10]] for side, name in (("first", first), ("against", against))
    }
    for side, other in (("first", "against"), ("against", "first")):
        assert [doc for doc, _, _ in lists[side]] == expected[side]
        for doc, grade, other_rank in lists[side]:
            judged = qrels.get(query, {}).get(doc)
            assert grade == ("unjudged" if judged is None else str(judged))
            assert other_rank == (str(expected[other].index(doc) + 1) if doc in expected[other] else "")
