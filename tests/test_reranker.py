"""Cross-encoder: group layout, training lowers the loss, exact resume, HF/sentence-transformers
compatibility, and reranking semantics. All on a tiny random BERT."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

from core.data.beir import BeirDataset
from core.data.groups import Passage, TrainingGroup, epoch_batches, sample_group
from core.training.loop import TrainLoop
from core.training.losses import ListwiseNLLLoss, PointwiseBCELoss
from pipelines.evaluation.fusion import interpolate_reranked
from rerank.model import CrossEncoder, last_windows
from rerank.rerank import rerank_run
from rerank.train import RerankerConfig, sampled_windows, train_reranker


def tiny_groups(dataset: BeirDataset) -> list[TrainingGroup]:
    corpus = dataset.corpus
    groups = []
    for query_id, judged in {**dataset.qrels("train"), **dataset.qrels("test")}.items():
        for positive in judged:
            negatives = [Passage(d, corpus.passage(d), rank=i) for i, d in enumerate(corpus.ids) if d not in judged]
            groups.append(
                TrainingGroup(
                    query_id, dataset.queries[query_id], [Passage(positive, corpus.passage(positive))], negatives
                )
            )
    return groups


@pytest.fixture
def dataset(tiny_dir: Path) -> BeirDataset:
    return BeirDataset(tiny_dir)


def test_groups_are_laid_out_positive_first(dataset: BeirDataset) -> None:
    groups = tiny_groups(dataset)
    batches = list(epoch_batches(groups, 4, 2, 1, epoch=0))
    assert len(batches) == len(groups) // 2
    positives: dict[str, set[str]] = {}
    for group in groups:
        positives.setdefault(group.query, set()).update(p.text for p in group.positives)
    for batch in batches:
        for sample in batch:
            assert len(sample.texts) == 4
            assert sample.texts[0] in positives[sample.query]
            assert not set(sample.texts[1:]) & positives[sample.query]
    # fresh negatives every epoch, same for the same epoch
    assert list(epoch_batches(groups, 4, 2, 1, 0)) == batches
    assert list(epoch_batches(groups, 4, 2, 1, 1)) != batches


def test_processes_get_disjoint_equal_shares(dataset: BeirDataset) -> None:
    groups = tiny_groups(dataset)  # 7 groups: 3 steps of 2 processes x 1 group, one group left over
    shares = [[q for b in epoch_batches(groups, 2, 1, 42, 0, rank, 2) for q in (s.query for s in b)] for rank in (0, 1)]
    assert len(shares[0]) == len(shares[1]) == 3
    assert not Counter(shares[0] + shares[1]) - Counter(g.query for g in groups)


def test_each_epoch_samples_one_of_the_query_s_positives() -> None:
    group = TrainingGroup("q", "query", [Passage(f"p{i}", f"pos{i}") for i in range(3)], [Passage("n", "neg")])
    firsts = {batch[0].texts[0] for epoch in range(30) for batch in epoch_batches([group], 2, 1, 7, epoch)}
    assert firsts == {"pos0", "pos1", "pos2"}  # one positive per epoch, every one of them over epochs


def test_short_groups_sample_with_replacement() -> None:
    group = TrainingGroup("q", "query", [Passage("p", "pos")], [Passage("n", "neg")])
    assert sample_group(group, 4, random.Random(0)) == ["pos", "neg", "neg", "neg"]


def test_training_lowers_the_loss(dataset: BeirDataset, tiny_bert: Path, tmp_path: Path) -> None:
    groups = tiny_groups(dataset)
    config = RerankerConfig(
        model=str(tiny_bert),
        group_size=4,
        batch_queries=2,
        epochs=25,
        min_steps=0,
        learning_rate=3e-3,
        warmup_ratio=0.0,
        seed=3,
    )
    fixed = next(epoch_batches(groups, 4, 2, config.seed, 0))

    def batch_loss(model: CrossEncoder) -> float:
        queries = [sample.query for sample in fixed for _ in sample.texts]
        passages = [t for sample in fixed for t in sample.texts]
        with torch.no_grad():
            model.eval()
            return ListwiseNLLLoss()(model(model.tokenize(queries, passages)).view(2, 4)).item()

    torch.manual_seed(config.seed)
    before = batch_loss(CrossEncoder.from_pretrained(tiny_bert))
    train_reranker(groups, config, tmp_path / "ce")
    after = batch_loss(CrossEncoder.from_pretrained(tmp_path / "ce"))
    assert after < before - 0.3, (before, after)
    log = (tmp_path / "ce" / "loss.csv").read_text().splitlines()
    assert log[0] == "step,epoch,loss,learning_rate,seconds" and len(log) > 2


def test_bce_trains_on_the_same_batches(
    dataset: BeirDataset, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = tiny_groups(dataset)
    seen: dict[str, list] = {"nll": [], "bce": []}
    tokenize = CrossEncoder.tokenize
    for loss in ("nll", "bce"):
        monkeypatch.setattr(
            CrossEncoder, "tokenize", lambda self, q, p, _l=loss: (seen[_l].append((q, p)), tokenize(self, q, p))[1]
        )
        config = RerankerConfig(
            model=str(tiny_bert), loss=loss, group_size=4, batch_queries=2, epochs=1, min_steps=0, seed=3
        )
        summary = train_reranker(groups, config, tmp_path / loss)
        assert summary["steps"] == len(groups) // 2
    assert len(seen["bce"]) == len(groups) // 2 and seen["nll"] == seen["bce"]  # same pairs, same order, every step


@pytest.mark.parametrize("average_from", [0.0, 0.5])
def test_resume_continues_exactly(
    dataset: BeirDataset, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, average_from: float
) -> None:
    """Also with tail averaging, whose running sum (here steps 3-6) must survive the crash at step 4."""
    groups = tiny_groups(dataset)
    config = RerankerConfig(
        model=str(tiny_bert), group_size=3, batch_queries=2, epochs=2, min_steps=0, learning_rate=5e-4, seed=5,
        average_from=average_from, average_every=1,
    )  # fmt: skip
    train_reranker(groups, config, tmp_path / "straight")

    checkpointed = RerankerConfig(**{**config.__dict__, "save_every": 2})
    save = TrainLoop.save_checkpoint

    def save_then_crash(self: TrainLoop) -> None:
        save(self)
        if self.state.step == 4:  # mid second epoch (3 steps per epoch)
            raise KeyboardInterrupt

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(TrainLoop, "save_checkpoint", save_then_crash)
        train_reranker(groups, checkpointed, tmp_path / "resumed")
    assert [p.name for p in (tmp_path / "resumed").glob("checkpoint-*")] == ["checkpoint-4"]
    train_reranker(groups, checkpointed, tmp_path / "resumed", resume=True)

    straight = CrossEncoder.from_pretrained(tmp_path / "straight").model.state_dict()
    resumed = CrossEncoder.from_pretrained(tmp_path / "resumed").model.state_dict()
    for name, tensor in straight.items():
        torch.testing.assert_close(tensor, resumed[name], msg=name)
    again = train_reranker(groups, checkpointed, tmp_path / "resumed", resume=True)  # finished: nothing to do
    assert again["finished_earlier"] and again["steps"] == 0


def test_tail_averaging_finishes_with_the_mean_of_the_tails_weights(
    dataset: BeirDataset, tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from safetensors.torch import load_file

    seen: dict[int, dict[str, torch.Tensor]] = {}
    save = TrainLoop.save_checkpoint

    def save_and_note(self: TrainLoop) -> None:
        seen[self.state.step] = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        save(self)

    monkeypatch.setattr(TrainLoop, "save_checkpoint", save_and_note)
    config = RerankerConfig(
        model=str(tiny_bert), group_size=3, batch_queries=2, epochs=2, min_steps=0, learning_rate=5e-4, seed=5,
        save_every=1, average_from=0.5, average_every=1,
    )  # fmt: skip
    summary = train_reranker(tiny_groups(dataset), config, tmp_path / "ce")
    assert summary["steps"] == 6 and summary["averaged_steps"] == 4  # steps 3, 4, 5 and 6
    tail = [seen[step] for step in (3, 4, 5, 6)]
    averaged = load_file(tmp_path / "ce" / "model.safetensors")
    assert not torch.equal(tail[0]["model.classifier.weight"], tail[-1]["model.classifier.weight"])  # they differ
    for name, tensor in averaged.items():  # the trainer's CrossEncoder holds the saved model as `model`
        torch.testing.assert_close(tensor, sum(state[f"model.{name}"] for state in tail) / 4, msg=name)
    assert "mean of 4 points" in (tmp_path / "ce" / "README.md").read_text()


def test_saved_model_loads_in_transformers_and_sentence_transformers(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = CrossEncoder.from_pretrained(tiny_bert, max_length=64)
    model.save_pretrained(tmp_path / "ce")
    ours = model.score(["aspirin heart"], ["aspirin reduces heart attack risk"], precision="fp32", show_progress=False)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path / "ce")
    assert hf.config.num_labels == 1
    assert CrossEncoder.from_pretrained(tmp_path / "ce").max_length == 64
    sentence_transformers = pytest.importorskip("sentence_transformers")
    st = sentence_transformers.CrossEncoder(str(tmp_path / "ce"), activation_fn=torch.nn.Identity(), device="cpu")
    theirs = st.predict([("aspirin heart", "aspirin reduces heart attack risk")])
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-5)
    assert st.max_seq_length == 64  # the length tandem trained at, where sentence-transformers reads it


def test_rerank_keeps_order_below_depth(dataset: BeirDataset, tiny_bert: Path) -> None:
    model = CrossEncoder.from_pretrained(tiny_bert)
    run = {"q2": [(d, 10.0 - i) for i, d in enumerate(dataset.corpus.ids)]}
    reranked = rerank_run(run, dataset.queries, dataset.corpus, model, depth=5, show_progress=False)["q2"]
    assert [d for d, _ in reranked[5:]] == dataset.corpus.ids[5:]
    assert {d for d, _ in reranked[:5]} == set(dataset.corpus.ids[:5])
    expected = model.score(
        [dataset.queries["q2"]] * 5, [dataset.corpus.passage(d) for d in dataset.corpus.ids[:5]], show_progress=False
    )
    assert [d for d, _ in reranked[:5]] == [dataset.corpus.ids[i] for i in np.argsort(-expected, kind="stable")]
    mixed = interpolate_reranked({"q2": reranked}, run, alpha=0.5, depth=5)["q2"]
    assert all(0.0 <= s <= 1.0 for _, s in mixed[:5])
    assert [d for d, _ in mixed[5:]] == dataset.corpus.ids[5:]  # below the depth: first-stage order
    assert {d for d, _ in mixed[:5]} == set(dataset.corpus.ids[:5])


def test_the_last_window_is_the_passages_end_that_fits_from_a_whole_word(tiny_bert: Path) -> None:
    model = CrossEncoder.from_pretrained(tiny_bert, max_length=32)
    words = [f"w{i}" for i in range(60)]  # one token each here: the tiny vocabulary has no word pieces
    passage = " ".join(words)
    query = "aspirin heart"
    tail, short = last_windows(model.tokenizer, [query, query], [passage, "aspirin"], max_length=32)
    assert tail is not None and passage.endswith(tail) and tail.split()[0] in words
    assert len(model.tokenizer(query, tail)["input_ids"]) <= 32 < len(model.tokenizer(query, passage)["input_ids"])
    assert len(model.tokenizer(query, f"w0 {tail}")["input_ids"]) > 32  # and is the longest such end
    assert short is None  # the whole passage fits


def test_last_window_scoring_keeps_each_pairs_higher_window(tiny_bert: Path) -> None:
    model = CrossEncoder.from_pretrained(tiny_bert, max_length=32)
    words = [word for word in model.tokenizer.vocab if word.isalpha()][:60]  # known words: windows differ
    queries = ["aspirin heart", "aspirin heart", "statin"]
    passages = [" ".join(words), "aspirin", " ".join(reversed(words))]
    first = model.score(queries, passages, precision="fp32", show_progress=False)
    tails = last_windows(model.tokenizer, queries, passages, 32)
    last = model.score([queries[0], queries[2]], [tails[0], tails[2]], precision="fp32", show_progress=False)
    assert tails[1] is None and not np.allclose(first[[0, 2]], last, rtol=0, atol=1e-6)
    model.last_window = True
    both = model.score(queries, passages, precision="fp32", show_progress=False)
    np.testing.assert_allclose(both, [max(first[0], last[0]), first[1], max(first[2], last[1])], rtol=1e-5)


def test_training_reads_a_long_passages_last_window_at_the_share_asked(tiny_bert: Path) -> None:
    model = CrossEncoder.from_pretrained(tiny_bert, max_length=32)
    words = [word for word in model.tokenizer.vocab if word.isalpha()][:60]
    long, short = " ".join(words), "aspirin"
    queries, passages = ["aspirin heart"] * 400, [long, short] * 200
    tail = last_windows(model.tokenizer, queries[:1], [long], 32)[0]
    random.seed(0)
    sampled = sampled_windows(model, queries, passages, share=0.5)
    assert sampled[1::2] == [short] * 200  # a passage that fits is read whole
    assert set(sampled[::2]) == {long, tail} and 70 < sampled[::2].count(tail) < 130
    assert sampled_windows(model, queries, passages, share=1.0)[::2] == [tail] * 200


def test_head_learning_rate_applies_only_to_the_new_head(tiny_bert: Path, tmp_path: Path) -> None:
    from core.training.config import TrainingConfig
    from core.training.loop import parameter_groups

    model = CrossEncoder.from_pretrained(tiny_bert)
    assert set(model.new_parameter_names) == {"model.classifier.weight", "model.classifier.bias"}
    groups = parameter_groups(model, TrainingConfig(learning_rate=2e-5, head_learning_rate=1e-3))
    head = {id(p) for name, p in model.named_parameters() if name.startswith("model.classifier.")}
    for group in groups:
        ids = {id(p) for p in group["params"]}
        assert ids <= head if group["lr"] == 1e-3 else not ids & head
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    assert sum(len(g["params"]) for g in groups if g["lr"] == 1e-3) == 2

    model.save_pretrained(tmp_path / "ce")  # a trained cross-encoder has no new parameters
    assert CrossEncoder.from_pretrained(tmp_path / "ce").new_parameter_names == ()
    plain = parameter_groups(model, TrainingConfig(learning_rate=2e-5))
    assert {g["lr"] for g in plain} == {2e-5}


def test_logits_stay_float32_under_bf16_autocast(tiny_bert: Path) -> None:
    """A bf16 logit keeps ~3 digits and would tie close candidates; the head runs in float32."""
    model = CrossEncoder.from_pretrained(tiny_bert)
    pairs = (["aspirin heart"] * 4, [f"aspirin reduces heart attack risk {'again ' * i}" for i in range(4)])
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(model.tokenize(*pairs))
    assert logits.dtype == torch.float32
    assert not torch.equal(logits, logits.to(torch.bfloat16).float())
    fp32 = model.score(*pairs, precision="fp32", show_progress=False)
    bf16 = model.score(*pairs, precision="bf16", show_progress=False)
    np.testing.assert_allclose(bf16, fp32, atol=0.05)


def test_training_stops_when_dev_stops_improving_and_keeps_the_best_weights(
    dataset: BeirDataset, tiny_bert: Path, tmp_path: Path
) -> None:
    figures = iter([0.1, 0.3, 0.2, 0.25, 0.1, 0.5])  # best at the 2nd evaluation; patience 2 ends at the 4th
    snapshots: dict[int, dict[str, torch.Tensor]] = {}

    def dev_score(model: CrossEncoder) -> float:
        snapshots[len(snapshots) + 1] = {k: v.clone() for k, v in model.state_dict().items()}
        return next(figures)

    config = RerankerConfig(
        model=str(tiny_bert),
        group_size=3,
        batch_queries=1,
        epochs=3,
        min_steps=0,
        learning_rate=3e-3,
        eval_every=1,
        patience=2,
    )
    summary = train_reranker(tiny_groups(dataset), config, tmp_path / "ce", dev_score=dev_score)
    assert (summary["steps"], summary["best_step"], summary["best_dev"]) == (4, 2, 0.3) and summary["stopped_early"]
    assert [step for step, _ in summary["dev_curve"]] == [1, 2, 3, 4]
    final = CrossEncoder.from_pretrained(tmp_path / "ce").state_dict()
    assert all(torch.equal(final[k], snapshots[2][k]) for k in final)
    assert not any(torch.equal(final[k], snapshots[4][k]) for k in final if k.endswith("classifier.weight"))
    assert not (tmp_path / "ce" / "best-weights.pt").exists()


def test_multi_positive_nll_targets_the_set_of_positives() -> None:
    scores = torch.tensor([[2.0, 1.0, 0.0, -1.0], [0.5, 1.0, 2.0, 0.0]])
    expected = -torch.log(torch.exp(scores[0, :2]).sum() / torch.exp(scores[0]).sum())
    single = ListwiseNLLLoss()(scores[1:])  # one positive: the plain NLL
    both = ListwiseNLLLoss()(scores, positives=torch.tensor([2, 1]))
    assert both.item() == pytest.approx(((expected + single) / 2).item(), rel=1e-5)
    labels = torch.tensor([[1.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    bce = PointwiseBCELoss()(scores, positives=torch.tensor([2, 1]))
    assert bce.item() == pytest.approx(PointwiseBCELoss()(scores, labels).item(), rel=1e-6)
    group = TrainingGroup("q", "query", [Passage(f"p{i}", f"pos{i}") for i in range(3)], [Passage("n", "neg")])
    sample = next(epoch_batches([group], 4, 1, 7, 0, positives=2))[0]
    assert sample.positives == 2 and len({*sample.texts[:2]}) == 2 and {*sample.texts[:2]} <= {"pos0", "pos1", "pos2"}
    assert sample.texts[2:] == ["neg", "neg"]
    few = TrainingGroup("q", "query", [Passage("p", "pos")], [Passage("n1", "a"), Passage("n2", "b")])
    sample = next(epoch_batches([few], 3, 1, 7, 0, positives=2))[0]
    assert sample.positives == 1 and sample.texts[0] == "pos" and set(sample.texts[1:]) == {"a", "b"}


def test_reranked_at_a_shallower_depth_reuses_the_scores() -> None:
    from rerank.rerank import reranked_at_depth

    first = {"q": [("a", 3.0), ("b", 2.0), ("c", 1.0)]}
    scored = {"q": [("c", 5.0), ("b", 4.0), ("a", 1.0)]}  # first reranked at depth 3
    assert [doc for doc, _ in reranked_at_depth(first, scored, 2)["q"]] == ["b", "a", "c"]
    assert [doc for doc, _ in reranked_at_depth(first, scored, 3)["q"]] == ["c", "b", "a"]
