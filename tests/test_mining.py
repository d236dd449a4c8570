"""Mining never keeps a judged positive, is byte-for-byte deterministic for a seed, and applies its
false-negative filters; on SciFact train from BM25 as well."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.data.beir import BeirDataset
from core.data.groups import read_groups
from pipelines.cli import main
from retrieval.mining import MiningConfig, MiningStats, mine_groups, parse_rank_range
from tests.conftest import real_dataset


def fake_source(dataset: BeirDataset) -> dict[str, list[tuple[str, float]]]:
    """Every passage for every query, scored by position: rank r has score 100 - r."""
    return {qid: [(d, 100.0 - r) for r, d in enumerate(dataset.corpus.ids, start=1)] for qid in dataset.queries}


def mine(dataset: BeirDataset, config: MiningConfig, scorers=None, reranker_filter=None) -> tuple[list, MiningStats]:
    stats = MiningStats()
    groups = list(
        mine_groups(
            dataset.queries,
            dataset.qrels("test"),
            dataset.corpus,
            {"fake": fake_source(dataset)},
            scorers or {},
            config,
            stats,
            reranker_filter,
        )
    )
    return groups, stats


def test_positives_are_never_negatives(tiny_dir: Path) -> None:
    dataset = BeirDataset(tiny_dir)
    groups, stats = mine(dataset, MiningConfig(num_negatives=20, depth=12))
    qrels = dataset.qrels("test")
    assert len(groups) == stats.groups == 3  # one per query: q2's two positives share a group
    assert {p.id: p.relevance for p in next(g for g in groups if g.query_id == "q2").positives} == {"d2": 1, "d11": 2}
    assert stats.positives == 4
    for group in groups:
        assert not {n.id for n in group.negatives} & set(qrels[group.query_id])
        assert len(group.negatives) == 12 - len(qrels[group.query_id])
    assert stats.removed["judged positive"] == 4
    assert stats.queries_short_of_negatives == 3


def test_min_relevance_picks_positives_and_keeps_lower_grades_out_of_negatives(tiny_dir: Path) -> None:
    dataset = BeirDataset(tiny_dir)
    groups, stats = mine(dataset, MiningConfig(num_negatives=20, depth=12, min_relevance=2))
    assert [g.query_id for g in groups] == ["q2"]  # the only query with a grade-2 passage
    assert [p.id for p in groups[0].positives] == ["d11"]
    assert "d2" not in {n.id for n in groups[0].negatives}  # judged grade 1: neither positive nor negative


def test_groups_file_grows_with_queries_not_judged_pairs(tiny_dir: Path, tmp_path: Path) -> None:
    from core.data.groups import write_groups

    dataset = BeirDataset(tiny_dir)
    groups, _ = mine(dataset, MiningConfig(num_negatives=5, depth=12))
    write_groups(groups, tmp_path / "g.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "g.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all("text" not in p for line in lines for p in line["positives"] + line["negatives"])
    with pytest.raises(Exception, match="references passages by id"):
        read_groups(tmp_path / "g.jsonl")[0].text(groups[0].positives[0].__class__(groups[0].positives[0].id))
    back = read_groups(tmp_path / "g.jsonl", dataset.corpus)
    assert back[0].text(back[0].positives[0]) == dataset.corpus.passage(back[0].positives[0].id)
    write_groups(back, tmp_path / "with-text.jsonl", with_text=True)
    standalone = read_groups(tmp_path / "with-text.jsonl")  # no corpus needed
    assert [standalone[0].text(p) for p in standalone[0].negatives] == [back[0].text(p) for p in back[0].negatives]
    broken = (tmp_path / "g.jsonl").read_text().replace('"id": "d1"', '"id": "nope"', 1)
    (tmp_path / "broken.jsonl").write_text(broken)
    with pytest.raises(Exception, match=r"broken.jsonl:\d+: .*'nope' is not in the corpus"):
        read_groups(tmp_path / "broken.jsonl", dataset.corpus)


def test_rank_window_and_margin(tiny_dir: Path) -> None:
    dataset = BeirDataset(tiny_dir)
    groups, stats = mine(dataset, MiningConfig(num_negatives=20, depth=12, rank_range=(3, 8)))
    assert all(3 <= n.rank <= 8 for g in groups for n in g.negatives)
    assert stats.removed["outside rank range"] > 0
    # positives score 100 under the scorer: margin 0.95 drops candidates above 95, i.e. ranks 1-4 (99..96)
    groups, stats = mine(dataset, MiningConfig(num_negatives=20, depth=12, margin=0.95), {"fake": lambda q, p: 100.0})
    q5 = next(g for g in groups if g.query_id == "q5")
    assert q5.negatives and all(n.score <= 95 and n.rank >= 5 for n in q5.negatives)
    assert stats.removed["above margin x positive score (fake)"] > 0
    with pytest.raises(ValueError, match="rank range"):
        MiningConfig(rank_range=(5, 2))
    with pytest.raises(ValueError, match="A:B"):
        parse_rank_range("ten:20")
    assert parse_rank_range("none") is None and parse_rank_range("3:8") == (3, 8)


def test_sampling_depends_only_on_seed(tiny_dir: Path) -> None:
    dataset = BeirDataset(tiny_dir)
    a, _ = mine(dataset, MiningConfig(num_negatives=3, depth=12, seed=7))
    b, _ = mine(dataset, MiningConfig(num_negatives=3, depth=12, seed=7))
    c, _ = mine(dataset, MiningConfig(num_negatives=3, depth=12, seed=8))
    assert [g.to_json() for g in a] == [g.to_json() for g in b]
    assert [g.to_json() for g in a] != [g.to_json() for g in c]


@pytest.mark.integration
def test_scifact_bm25_mining_cli(tmp_path: Path) -> None:
    scifact = str(real_dataset("scifact"))
    index = tmp_path / "bm25"
    assert main(["bm25", "index", "--dataset", scifact, "--out", str(index)]) == 0
    outputs = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.jsonl"
        args = ["mine", "--dataset", scifact, "--split", "train", "--bm25-index", str(index), "--out", str(out)]
        assert main([*args, "--num-negatives", "8", "--depth", "50", "--rank-range", "3:50", "--seed", "11"]) == 0
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1]
    dataset = BeirDataset(scifact)
    qrels = dataset.qrels("train")
    groups = read_groups(tmp_path / "a.jsonl")
    assert len(groups) == sum(1 for judged in qrels.values() if any(rel > 0 for rel in judged.values()))  # per query
    assert sum(len(g.positives) for g in groups) == sum(1 for j in qrels.values() for rel in j.values() if rel > 0)
    for group in groups:
        assert not {n.id for n in group.negatives} & {d for d, rel in qrels[group.query_id].items() if rel > 0}
        assert all(3 <= n.rank <= 50 and n.source == "bm25" for n in group.negatives)
    stats = json.loads((tmp_path / "a.jsonl.stats.json").read_text())
    assert stats["groups"] == len(groups) and stats["removed"]["judged positive"] > 0


def test_title_queries_leave_titles_out(tiny_dir: Path) -> None:
    from retrieval.pseudo import title_queries

    dataset = BeirDataset(tiny_dir)
    queries, qrels = title_queries(dataset.corpus, count=3, seed=1)
    assert len(queries) == 3 and all(qid.startswith("title:") for qid in queries)
    for qid, title in queries.items():
        (doc_id,) = qrels[qid]
        assert title == dataset.corpus.titles[dataset.corpus.position[doc_id]]
    stats = MiningStats()
    groups = list(
        mine_groups(
            queries,
            qrels,
            dataset.corpus,
            {"fake": fake_source(dataset)},
            {},
            MiningConfig(num_negatives=4),
            stats,
            passage_form="text",
        )
    )
    assert len(groups) == 3
    for group in groups:
        assert group.query not in group.text(group.positives[0])  # the title is not copied into its positive
        assert all(group.text(n) in dataset.corpus.texts for n in group.negatives)


@pytest.mark.integration
def test_scifact_dense_mining_cli(tmp_path: Path) -> None:
    """Mining from a dense index on SciFact train: a tiny random BERT with MiniLM's vocabulary keeps it
    fast; what is tested (no judged positive among the negatives, sources recorded) does not depend on
    the model's quality."""
    from core.models import offline_minilm_path
    from tests.tiny_models import build_tiny_bert

    scifact = str(real_dataset("scifact"))
    encoder = build_tiny_bert(tmp_path / "tiny", [], vocab_file=offline_minilm_path() / "vocab.txt")
    assert (
        main(["index", "build", "--dataset", scifact, "--encoder", str(encoder), "--out", str(tmp_path / "idx")]) == 0
    )
    assert main(["bm25", "index", "--dataset", scifact, "--out", str(tmp_path / "bm25")]) == 0
    out = tmp_path / "groups.jsonl"
    args = [
        "mine",
        "--dataset",
        scifact,
        "--split",
        "train",
        "--index",
        str(tmp_path / "idx"),
        "--bm25-index",
        str(tmp_path / "bm25"),
    ]
    assert main([*args, "--out", str(out), "--num-negatives", "10", "--depth", "30"]) == 0
    qrels = BeirDataset(scifact).qrels("train")
    groups = read_groups(out)
    assert len(groups) == sum(1 for judged in qrels.values() if any(rel > 0 for rel in judged.values()))
    sources = set()
    for group in groups:
        assert not {n.id for n in group.negatives} & {d for d, rel in qrels[group.query_id].items() if rel > 0}
        sources |= {n.source for n in group.negatives}
    assert any("dense" in s for s in sources) and any("bm25" in s for s in sources)


def test_cross_encoder_filter_drops_candidates_scored_above_the_positive(
    tiny_dir: Path, tiny_bert: Path, tmp_path: Path
) -> None:
    from rerank.filter import cross_encoder_filter
    from rerank.model import CrossEncoder

    dataset = BeirDataset(tiny_dir)
    CrossEncoder.from_pretrained(tiny_bert).save_pretrained(tmp_path / "ce")
    keep = cross_encoder_filter(tmp_path / "ce", dataset.corpus)
    groups, stats = mine(dataset, MiningConfig(num_negatives=20, depth=12), reranker_filter=keep)
    model = CrossEncoder.from_pretrained(tmp_path / "ce")
    for group in groups:
        scores = model.score(
            [group.query] * (1 + len(group.negatives)),
            [group.text(group.positives[0])] + [group.text(n) for n in group.negatives],
            show_progress=False,
        )
        positives = dataset.qrels("test")[group.query_id]
        floor = min(
            model.score(
                [group.query] * len(positives), [dataset.corpus.passage(p) for p in positives], show_progress=False
            )
        )
        assert all(s <= floor + 1e-5 for s in scores[1:])
    assert stats.removed["cross-encoder scores above positive"] > 0


def test_positives_record_the_rank_mining_found_them_at_and_training_can_keep_those(tiny_dir: Path) -> None:
    from core.data.groups import groups_with_found_positives

    dataset = BeirDataset(tiny_dir)
    groups, _ = mine(dataset, MiningConfig(num_negatives=3, depth=12))
    order = dataset.corpus.ids  # the fake source ranks every passage by its position in the corpus
    for group in groups:
        for positive in group.positives:
            assert (positive.rank, positive.source) == (order.index(positive.id) + 1, "fake")
    q2 = next(g for g in groups if g.query_id == "q2")  # positives d2 (rank 2) and d11 (rank 11)
    kept, dropped = groups_with_found_positives(groups, depth=5)
    assert [p.id for p in next(g for g in kept if g.query_id == "q2").positives] == ["d2"]
    assert len(q2.positives) == 2  # the caller's groups are left as they were
    assert dropped == sum(1 for g in groups if all(order.index(p.id) + 1 > 5 for p in g.positives))
    assert groups_with_found_positives(groups, depth=0) == (groups, 0)
    for group in groups:
        for positive in group.positives:
            positive.rank = None  # groups from another tool: every positive kept, with a warning
    assert groups_with_found_positives(groups, depth=5) == (groups, 0)


def test_training_keeps_the_judged_queries_near_negatives_and_every_title_group_negative(tiny_dir: Path) -> None:
    from dataclasses import replace

    from core.data.groups import TITLE_QUERY_PREFIX, groups_with_near_negatives, groups_with_negatives_ranked

    dataset = BeirDataset(tiny_dir)
    groups, _ = mine(dataset, MiningConfig(num_negatives=6, depth=12))
    title = replace(groups[0], query_id=f"{TITLE_QUERY_PREFIX}{groups[0].positives[0].id}")
    cut = groups_with_near_negatives([*groups, title], depth=5)
    pairs = list(zip([*groups, title], cut, strict=True))
    for before, after in pairs[:-1]:
        assert [p.id for p in after.negatives] == [p.id for p in before.negatives if p.rank <= 5]
    assert any(len(after.negatives) < len(before.negatives) for before, after in pairs)  # the cut removed some
    assert cut[-1].negatives == title.negatives  # a title pseudo-query group keeps all of its negatives
    assert all(p.rank > 5 for p in groups[0].negatives[-1:])  # the caller's groups are left as they were
    assert groups_with_near_negatives(groups, depth=0) == groups
    window = groups_with_negatives_ranked([*groups, title], 3, 8)  # the experiments' --rank-window 3:8
    for before, after in zip(groups, window, strict=False):
        assert [p.id for p in after.negatives] == [p.id for p in before.negatives if 3 <= p.rank <= 8]
    assert window[-1].negatives == title.negatives
    for group in groups:
        for negative in group.negatives:
            negative.rank = None  # groups from another tool: every negative kept, with a warning
    assert groups_with_near_negatives(groups, depth=5) == groups
