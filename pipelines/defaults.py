"""`tandem run`'s configuration: a tree of dataclasses, one per section.

The training sections take every value from the library's recipes (`RetrieverConfig`, `RerankerConfig`,
`MiningConfig`), which the sub-commands and the Python API use too, so a command, a stage and a script
that do the same job train the same model. The other sections (retrieval, reranking, fusion) hold their
own values; the sub-commands that do those jobs take their defaults from here. Why each value is what it
is: docs/experiments.md."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from rerank.train import RerankerConfig
from retrieval.mining import MiningConfig
from retrieval.train import RetrieverConfig

RETRIEVER, RERANKER, MINING = RetrieverConfig(), RerankerConfig(), MiningConfig()
"""The library's recipes: the single source of the training sections' defaults below."""

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
    dev: str | None = "dev"
    """the dataset's own dev qrels (`qrels/<dev>.tsv`), used as the dev split when present; else (or when
    None) dev is carved from the train queries with the options below"""
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
    """The bi-encoder's training: `RetrieverConfig` (retrieval/train.py) holds each value and says why."""

    model: str | None = RETRIEVER.model
    epochs: float = RETRIEVER.epochs
    min_steps: int = RETRIEVER.min_steps
    max_steps: int = RETRIEVER.max_steps
    batch_queries: int = RETRIEVER.batch_queries
    group_size: int = RETRIEVER.group_size
    learning_rate: float = RETRIEVER.learning_rate
    temperature: float = RETRIEVER.encoder.temperature
    passage_max_length: int = RETRIEVER.encoder.passage_max_length
    query_max_length: int = RETRIEVER.encoder.query_max_length
    attention_dropout: float = RETRIEVER.attention_dropout
    negatives_depth: int = 100
    """BM25 candidates per train query the retriever stage mines its negatives from (not chosen on dev:
    docs/experiments.md, "Defaults not chosen on both dev splits")"""
    num_negatives: int = MINING.num_negatives
    seed: int = RETRIEVER.seed
    precision: str = RETRIEVER.precision


@dataclass
class MiningDefaults:
    """Hard-negative mining: `MiningConfig` (retrieval/mining.py) holds the filter's values."""

    sources: list[str] = field(default_factory=lambda: ["dense", "bm25"])
    num_negatives: int = MINING.num_negatives
    depth: int = MINING.depth
    rank_range: list[int] | None = field(default_factory=lambda: list(MINING.rank_range) if MINING.rank_range else None)
    margin: float | None = MINING.margin
    title_queries_per_query: float = 1.0
    """title pseudo-query groups (a passage's title as the query, its text as the positive) added to the
    cross-encoder's training groups, per judged training query (train mode). Chosen on both dev splits
    against a fixed 1,500 and against none (docs/experiments.md, "Title pseudo-queries"): without them
    NFCorpus's cross-encoder falls far below BM25, while a fixed number swamps SciFact's few judged queries"""
    title_queries: int = 1500
    """title pseudo-queries in self-supervised mode, where no query is judged: both encoders train on them"""
    seed: int = MINING.seed


@dataclass
class RerankerDefaults:
    """The cross-encoder's training: `RerankerConfig` (rerank/train.py) holds each value and says why;
    `losses` trains one cross-encoder per loss (the seed's NLL, and BCE to compare)."""

    enabled: bool = True
    """train the cross-encoder(s) (a --budget too short for the steps dev needs turns this off)"""
    model: str | None = RERANKER.model
    losses: list[str] = field(default_factory=lambda: [RERANKER.loss])
    epochs: float = RERANKER.epochs
    min_steps: int = RERANKER.min_steps
    max_steps: int = RERANKER.max_steps
    learning_rate: float = RERANKER.learning_rate
    head_learning_rate: float | None = RERANKER.head_learning_rate
    group_size: int = RERANKER.group_size
    batch_queries: int = RERANKER.batch_queries
    max_length: int = RERANKER.max_length
    last_window_share: float = RERANKER.last_window_share
    attention_dropout: float = RERANKER.attention_dropout
    save_every: int = RERANKER.save_every
    eval_every: int = RERANKER.eval_every
    patience: int = RERANKER.patience
    average_from: float = RERANKER.average_from
    average_every: int = RERANKER.average_every
    eval_depth: int = 30
    """with `eval_every`: dev hits per query each evaluation reranks (of the BM25 + dense RRF hybrid)"""
    positives: int = RERANKER.positives
    positive_depth: int = RERANKER.positive_depth
    negative_depth: int = RERANKER.negative_depth
    seed: int = RERANKER.seed
    precision: str = RERANKER.precision


@dataclass
class DistillDefaults:
    """Distilling the cross-encoder into the bi-encoder (off by default). Its settings follow RocketQAv2 and
    Tevatron and were sized for cost; the label weight, the temperature, the queries a step and the epochs
    were checked on SciFact's dev split (docs/log.md, "the default run, round by round")."""

    enabled: bool = False
    """distil the cross-encoder into the bi-encoder (off: it never beat the fine-tuned bi-encoder on dev by a
    significant margin, on NFCorpus its near-flat teacher collapsed the student, and it costs minutes a run;
    docs/experiments.md). When on, it is skipped where the teacher does not beat the student on dev."""
    teacher: str = "nll"
    """the trained cross-encoder (a `reranker.losses` entry) whose scores the bi-encoder learns; else the first"""
    loss: str = "kl"
    """kl (listwise, RocketQAv2) or margin-mse (Hofstaetter et al. 2020)"""
    num_negatives: int = 15
    """the top mined negatives of each group the cross-encoder scores (scoring all 30 doubles the stage)"""
    group_size: int = 8
    batch_queries: int = 8
    """queries a step: the distillation loss sets each query against its own group (no in-batch
    negatives), so a smaller batch than the retriever's gives more updates for the same compute"""
    epochs: float = 1.0
    max_steps: int = 0
    learning_rate: float = 2e-5
    teacher_temperature: float = RETRIEVER.teacher_temperature
    label_weight: float = RETRIEVER.label_weight
    batch_size: int = 64
    precision: str = "auto"
    """the teacher's scoring: auto (bf16 where fast, else fp32), fp32, bf16 or int8"""
    seed: int = 42


@dataclass
class RerankDefaults:
    depth: int = 30
    """first-stage hits each cross-encoder rescores per query. Chosen on both dev splits (docs/experiments.md,
    "Rerank depth"): the dev-chosen result is the same at 30 and 100 (mean dev nDCG@10 within 0.0002), the
    cross-encoder alone is better on dev at 30 on both collections, and 30 scores under a third of the pairs"""
    batch_size: int = 64
    last_window: bool = True
    """also score each passage too long for one window on its last window, keeping the higher score
    (`CrossEncoder.last_window`). Chosen on both dev splits (docs/experiments.md, "How many tokens the
    cross-encoder reads"): it raised the cross-encoder alone and the fuse stage's mix on both, at up to
    twice the pairs scored. The cross-encoder's dev evaluations during training read the first window only:
    they compare checkpoints of one model, at half the cost"""
    first_stages: list[str] = field(default_factory=lambda: ["bm25", "hybrid"])
    """the runs each cross-encoder reranks: bm25, dense, hybrid. BM25 is the anchor; the hybrid holds both
    first stages' hits, and a cross-encoder can only reorder what its first stage found"""
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
    resamples: int = 100
    """0: the grid's best weighting on dev. N: bagging, the mean of the best weighting over N bootstrap
    samples of the dev queries, steadier on a small dev split. Chosen by cross-validation on both dev splits
    (docs/experiments.md, "How the fuse stage chooses its weights"): the bagged weights score better on
    held-out dev queries than the grid's best point"""


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
