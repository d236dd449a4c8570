"""Every default of tandem, once: a tree of dataclasses, one per section of `tandem run`'s configuration.

`tandem run` starts from `asdict(RunConfig())`; each sub-command takes its argparse defaults from the same
section (`tandem retriever train` from `RetrieverDefaults`, `tandem reranker train` from `RerankerDefaults`,
...), so a command and the stage that does the same job cannot drift apart. How each value was chosen,
and which were re-checked on a dev split after session 2 read some off test, is in the README ("How the
defaults were chosen")."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

MINING_SOURCES = ("dense", "bm25")
"""What `mining.sources` may list."""
RERANK_FIRST_STAGES = ("bm25", "dense", "hybrid")
"""What `rerank.first_stages` may list: BM25, the dense stage (fine-tuned, transferred or zero-shot), or
their RRF hybrid."""


@dataclass
class RunDefaults:
    mode: str = "auto"
    models_from: str | None = None


@dataclass
class SplitDefaults:
    train: str = "train"
    test: str = "test"
    min_relevance: int = 1
    dev_fraction: float = 0.1
    """share of the train queries held out as dev (never trained on) to choose the result and weights"""
    dev_max: int = 300
    dev_min: int = 20
    """below this many dev queries there is no dev split: the result is the system fixed in advance"""
    dev_seed: int = 42


@dataclass
class Bm25Defaults:
    fields: str = "flat"
    k1: float = 0.9
    b: float = 0.4
    k: int = 1000


@dataclass
class DenseDefaults:
    model: str | None = None
    factory: str = "auto"
    """FAISS index_factory string, or auto: Flat (exact) below 1M passages, IVF-Flat to 10M, IVF-SQ8 above"""
    batch_size: int = 64
    k: int = 1000
    precision: str = "auto"
    """corpus encoding: auto (bf16 where fast, else fp32), fp32, bf16 or int8 (OpenVINO; queries stay auto)"""


@dataclass
class RetrieverDefaults:
    model: str | None = None
    epochs: float = 3.0
    min_steps: int = 176
    """at least this many steps however small the train set (SciFact's 728 queries make 22 an epoch)"""
    max_steps: int = 0
    batch_queries: int = 32
    group_size: int = 2
    learning_rate: float = 2e-5
    temperature: float = 0.05
    passage_max_length: int = 256
    query_max_length: int = 64
    attention_dropout: float = 0.0
    negatives_depth: int = 100
    num_negatives: int = 30
    seed: int = 42
    precision: str = "auto"
    """training: auto (bf16 where fast, else fp32), fp32, bf16 or fp16"""


@dataclass
class MiningDefaults:
    sources: list[str] = field(default_factory=lambda: ["dense", "bm25"])
    num_negatives: int = 30
    depth: int = 100
    rank_range: list[int] | None = None
    margin: float | None = None
    title_queries: int = 1500
    seed: int = 42


@dataclass
class RerankerDefaults:
    model: str | None = None
    losses: list[str] = field(default_factory=lambda: ["nll"])
    epochs: float = 1.0
    min_steps: int = 1114
    """at least this many steps (4,456 groups) however small the train set: SciFact's 728 queries plus 1,500
    title groups make 557 an epoch, and twice that lifted the cross-encoder alone from dev nDCG@10 0.7359 to
    0.7684 reranking the hybrid (bench/losses.py --epochs 2, README session 15)"""
    max_steps: int = 0
    learning_rate: float = 7e-5
    head_learning_rate: float | None = 1.4e-3
    """the new one-logit head's peak lr (None: `learning_rate`); a start model that has a head keeps it at
    `learning_rate`. 20x the body's: dev nDCG@10 0.7642 against 0.7492 (bench/losses.py, README)"""
    group_size: int = 8
    batch_queries: int = 4
    max_length: int = 256
    attention_dropout: float = 0.0
    save_every: int = 50
    seed: int = 42
    precision: str = "auto"
    """training: auto (bf16 where fast, else fp32), fp32, bf16 or fp16"""


@dataclass
class DistillDefaults:
    enabled: bool = True
    teacher: str = "nll"
    """the trained cross-encoder (a `reranker.losses` entry) whose scores the bi-encoder learns; else the first"""
    loss: str = "kl"
    """kl (listwise, RocketQAv2) or margin-mse (Hofstaetter et al. 2020)"""
    num_negatives: int = 15
    """the top mined negatives of each group the cross-encoder scores (scoring all 30 doubles the stage)"""
    group_size: int = 8
    batch_queries: int = 8
    """queries a step. The loss is each query against its own group (no in-batch negatives), so a smaller
    batch gives more updates for the same compute: 91 steps of 8 against 22 of 32 on SciFact, in half the
    time (shorter padding). Chosen on dev with `teacher_temperature` (session 16, below)"""
    epochs: float = 1.0
    max_steps: int = 0
    learning_rate: float = 2e-5
    teacher_temperature: float = 4.0
    """divides the cross-encoder's logits before the softmax. A teacher scoring the queries it was trained
    on is near one-hot (SciFact: median 0.9996 of the mass on the judged positive at 1, 0.65 at 4), so at 1
    the student learns little beyond the labels. Chosen on dev with `batch_queries` (session 16,
    `bench.distill --teacher-temperature T --batch-queries B --seed S` on runs/default12's scored groups;
    mean dev nDCG@10 over seeds 42 and 43: 0.7872 at T1 B32, 0.7892 at T4 B32, 0.7911 at T1 B8, 0.7919 at
    T4 B8; T2 0.7892 / 0.7881 at B32 / B8, seed 42 only)"""
    label_weight: float = 2.0
    """kl: weight of the judged positive's NLL beside the KL term. Chosen on dev (session 13, runs/default9's
    scored groups): dev nDCG@10 0.7805 with the teacher alone (0), 0.7898 at 1, 0.7953 at 2; 0.7888 at 4
    (session 14, `bench.distill` on runs/default11's identical groups)"""
    batch_size: int = 64
    precision: str = "auto"
    """the teacher's scoring: auto (bf16 where fast, else fp32), fp32, bf16 or int8"""
    seed: int = 42


@dataclass
class RerankDefaults:
    depth: int = 100
    batch_size: int = 64
    first_stages: list[str] = field(default_factory=lambda: ["bm25", "hybrid"])
    """the runs each cross-encoder reranks: bm25, dense, hybrid. BM25 is the anchor; the hybrid holds both
    first stages' hits, and a cross-encoder can only reorder what its first stage found (SciFact dev
    Recall@100: --quick run hybrid 0.975, BM25 0.957, dense 0.932; default run 0.988, 0.957, 0.994)"""
    precision: str = "auto"
    """pair scoring: auto (bf16 where fast, else fp32), fp32, bf16 or int8 (OpenVINO, calibrated on the first run's pairs)"""
    fuse_weights: list[float] = field(default_factory=lambda: [round(0.1 * i, 1) for i in range(1, 10)])
    """cross-encoder weights tried on dev for `w * CE + (1 - w) * first stage` (min-max normalised)"""


@dataclass
class FuseDefaults:
    enabled: bool = True
    grid_step: float = 0.1
    """the weights of `a * CE + b * BM25 + c * dense` tried on dev: every multiple of this summing to 1
    (0.1: 66 combinations)"""


@dataclass
class HybridDefaults:
    rrf_k: int = 60
    depth: int = 1000


@dataclass
class RunConfig:
    run: RunDefaults = field(default_factory=RunDefaults)
    split: SplitDefaults = field(default_factory=SplitDefaults)
    bm25: Bm25Defaults = field(default_factory=Bm25Defaults)
    dense: DenseDefaults = field(default_factory=DenseDefaults)
    retriever: RetrieverDefaults = field(default_factory=RetrieverDefaults)
    mining: MiningDefaults = field(default_factory=MiningDefaults)
    reranker: RerankerDefaults = field(default_factory=RerankerDefaults)
    distill: DistillDefaults = field(default_factory=DistillDefaults)
    rerank: RerankDefaults = field(default_factory=RerankDefaults)
    fuse: FuseDefaults = field(default_factory=FuseDefaults)
    hybrid: HybridDefaults = field(default_factory=HybridDefaults)


DEFAULTS: dict = asdict(RunConfig())
"""The defaults as the nested dict `tandem run` merges config files into."""
