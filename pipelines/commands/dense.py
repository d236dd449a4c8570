"""`tandem retriever train`, `tandem index build` and `tandem dense search`."""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path

from core.atomic import atomic_file
from core.data.beir import file_fingerprint
from core.data.groups import read_groups
from core.data.runs import write_run
from core.errors import TandemError
from core.models import resolve_model
from core.options import build, given_options, resolve_options
from core.outputs import remove_owned
from core.parts import torchrun_device, torchrun_world
from pipelines.commands.common import (
    add_dataset_args,
    add_precision_arg,
    add_trainer_options,
    check_output_file,
    check_output_folder,
    dataset_from,
    positive_int,
    prepare_training_output,
    without_negatives_note,
    write_config,
)
from pipelines.defaults import DenseDefaults, DistillDefaults, RetrieverDefaults
from retrieval import bm25
from retrieval.dense import dense_search
from retrieval.encoder import POOLINGS, BiEncoder, BiEncoderConfig, saved_config
from retrieval.index import DenseIndex, build_index, check_factory, encode_corpus_shard
from retrieval.index.shards import plan_shards, wait_for_shards
from retrieval.mining import MiningConfig
from retrieval.negatives import mine_negatives
from retrieval.train import RetrieverConfig, train_retriever

DENSE = DenseDefaults()
RETRIEVER = RetrieverDefaults()
"""Defaults shared with `tandem run` (pipelines/defaults.py)."""


def register(commands: argparse._SubParsersAction) -> None:
    retriever = commands.add_parser("retriever", help="train the bi-encoder retriever")
    sub = retriever.add_subparsers(dest="retriever_command", metavar="ACTION", required=True)
    train = sub.add_parser(
        "train",
        help="DPR-style training: in-batch NLL + hard negatives",
        description="Fine-tune a bi-encoder: each query is scored against every passage of the batch (its positive, "
        "its hard negatives and all other queries' passages; across processes under torchrun) with softmax "
        "cross-entropy. Hard negatives come from --negatives (a groups file from `tandem mine`), else from BM25.",
    )
    add_dataset_args(train, split="train")
    train.add_argument("--out", required=True, type=Path, help="output model folder (checkpoints inside)")
    train.add_argument("--negatives", type=Path, help="training groups JSONL; default: mine BM25 negatives first")
    train.add_argument(
        "--negatives-depth",
        "--bm25-depth",
        type=positive_int,
        default=RETRIEVER.negatives_depth,
        help="BM25 candidates per query when mining (default: %(default)s)",
    )
    train.add_argument(
        "--num-negatives",
        type=positive_int,
        default=RETRIEVER.num_negatives,
        help="BM25 negatives kept per query when mining (default: %(default)s)",
    )
    tip = " (default: the start model's tandem config, else %s)"
    train.add_argument("--temperature", type=float, help="softmax temperature tau" + tip % "0.05")
    train.add_argument("--pooling", choices=POOLINGS, help="embedding pooling" + tip % "mean")
    train.add_argument(
        "--normalize", action=argparse.BooleanOptionalAction, help="L2-normalise embeddings" + tip % "yes"
    )
    train.add_argument(
        "--separate-towers", action=argparse.BooleanOptionalAction, help="untie query and passage encoders" + tip % "no"
    )
    train.add_argument("--query-max-length", type=positive_int, help="query tokens" + tip % "64")
    train.add_argument("--passage-max-length", type=positive_int, help="passage tokens" + tip % "256")
    add_trainer_options(train, RetrieverConfig, exclude=("encoder",))
    train.set_defaults(handler=run_train)

    index = commands.add_parser("index", help="encode a corpus and build a FAISS index")
    isub = index.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    build = isub.add_parser(
        "build",
        help="encode (optionally one shard) and build the FAISS index",
        description="Encode the corpus, longest passages first with dynamic padding, streaming embeddings to a "
        "memory-mapped file, then build a FAISS index. With --num-shards, run once per --shard-id (any order, any "
        "machine) with --encode-only, then once without --shard-id to merge and index; or start it under torchrun "
        "(`torchrun --nnodes N --nproc_per_node K -m pipelines.cli index build ...`): each process encodes the "
        "shards of its rank and rank 0 merges and indexes.",
    )
    add_dataset_args(build, split=None)
    build.add_argument("--encoder", help="bi-encoder folder or HF name (default: all-MiniLM-L6-v2)")
    build.add_argument("--out", required=True, type=Path, help="index folder to create")
    build.add_argument(
        "--factory",
        default=DENSE.factory,
        help="FAISS index_factory string (Flat, HNSW32, IVF4096,Flat, IVF4096,PQ64,RFlat ...) or auto: Flat (exact) "
        "below 1M passages, IVF<~4 sqrt(N)>,Flat to 10M, IVF...,SQ8 above (default: %(default)s)",
    )
    build.add_argument(
        "--batch-size",
        type=positive_int,
        default=DENSE.batch_size,
        help="passages per forward pass (default: %(default)s)",
    )
    build.add_argument("--shard-id", type=int, help="encode only this shard")
    build.add_argument("--num-shards", type=positive_int, default=1, help="number of contiguous shards (default: 1)")
    build.add_argument("--encode-only", action="store_true", help="encode the shard(s) without building the index")
    add_precision_arg(build, inference=True)
    build.add_argument("--device", help="cpu, cuda (default: cuda if available)")
    build.set_defaults(handler=run_build)

    dense = commands.add_parser("dense", help="dense retrieval")
    dsub = dense.add_subparsers(dest="dense_command", metavar="ACTION", required=True)
    search = dsub.add_parser("search", help="top-k from a dense index, as a TREC run")
    search.add_argument("--index", required=True, type=Path, help="index folder from `tandem index build`")
    add_dataset_args(search)
    search.add_argument("--out", required=True, type=Path, help="TREC run file to write")
    search.add_argument("--k", type=positive_int, default=DENSE.k, help="hits per query (default: %(default)s)")
    search.add_argument("--encoder", help="must be the index's encoder (checked); default: the one in meta.json")
    search.add_argument(
        "--nprobe", type=positive_int, help="IVF indexes: lists visited per query (default: min(64, nlist))"
    )
    search.add_argument("--ef-search", type=positive_int, help="HNSW indexes: search breadth (default: 128)")
    search.add_argument(
        "--refine-factor",
        type=positive_int,
        help="refine indexes (e.g. IVF4096,PQ64,RFlat): candidates re-scored exactly per hit (default: 4)",
    )
    search.add_argument("--batch-size", type=positive_int, default=DENSE.batch_size)
    search.add_argument("--device", help="cpu, cuda (default: cuda if available)")
    search.set_defaults(handler=run_search)


def bm25_groups(dataset, split: str, out_dir: Path, depth: int, num_negatives: int, seed: int) -> Path:
    """Mine BM25 negatives into out_dir/bm25-negatives.jsonl, with a BM25 index of its own in
    out_dir/bm25-index. Both are reused only when made from the same data and options (recorded in
    `bm25-negatives.jsonl.made-with.json`); otherwise they are made again."""
    groups_path = out_dir / "bm25-negatives.jsonl"
    record = groups_path.with_name(groups_path.name + ".made-with.json")
    made_with = {
        "dataset": str(dataset.root.resolve()),
        "corpus": dataset.corpus_fingerprint,
        "split": split,
        "qrels": file_fingerprint(dataset.root / "qrels" / f"{split}.tsv"),
        "depth": depth,
        "num_negatives": num_negatives,
        "seed": seed,
    }
    if groups_path.is_file() and record.is_file() and json.loads(record.read_text()) == made_with:
        return groups_path
    index_dir = out_dir / "bm25-index"
    index_ok = (index_dir / bm25.META_FILE).is_file()
    if not index_ok or bm25.read_index_meta(index_dir).corpus_fingerprint != dataset.corpus_fingerprint:
        bm25.build_index(dataset.corpus_path, index_dir)
    config = MiningConfig(num_negatives=num_negatives, depth=depth, seed=seed)
    queries = dataset.split_queries(split)
    stats = mine_negatives(dataset, queries, dataset.qrels(split), groups_path, config, bm25_index=index_dir)
    with atomic_file(record) as out:
        out.write(json.dumps(made_with, indent=2) + "\n")
    print(stats.summary())
    return groups_path


def retriever_config(args: argparse.Namespace) -> RetrieverConfig:
    """What `tandem retriever train` trains: `RetrieverConfig`'s defaults (distillation's batch size for
    --loss kl / margin-mse), then --config, --set and the flags; the encoder's options over the start
    model's own saved ones."""
    given = given_options(RetrieverConfig, args)
    options = resolve_options(RetrieverConfig, args)
    if options["loss"] != "nll" and "batch_queries" not in given:
        options["batch_queries"] = DistillDefaults.batch_queries
    encoder_given = {
        "pooling": args.pooling,
        "normalize": args.normalize,
        "temperature": args.temperature,
        "shared": None if args.separate_towers is None else not args.separate_towers,
        "query_max_length": args.query_max_length,
        "passage_max_length": args.passage_max_length,
    }
    start = saved_config(resolve_model(options["model"])) or BiEncoderConfig()
    options["encoder"] = replace(start, **{name: value for name, value in encoder_given.items() if value is not None})
    return build(RetrieverConfig, options)


def run_train(args: argparse.Namespace) -> int:
    distributed = torchrun_world()[1] > 1
    config = retriever_config(args)
    if config.loss != "nll" and not args.negatives:
        raise TandemError(
            f"--loss {config.loss} distils a cross-encoder: give --negatives with scored groups "
            "(`tandem reranker score-groups`)"
        )
    if distributed and not args.negatives:
        raise TandemError(
            "under torchrun, mine negatives once first (`tandem mine ... --bm25-index DIR`) and pass --negatives"
        )
    dataset = dataset_from(args)
    writes = prepare_training_output(args, dataset)
    groups_path = args.negatives or bm25_groups(
        dataset, args.split, args.out, args.negatives_depth, args.num_negatives, config.seed
    )
    config = retriever_config(args)
    if writes:
        write_config(args.out / "command.json", args, groups=str(groups_path), trainer=asdict(config))
    summary = train_retriever(read_groups(groups_path, dataset.corpus), config, args.out, resume=args.resume)
    print(
        f"trained {summary['steps']} steps on {summary['groups']} groups in {summary['seconds']:.0f} s; saved {args.out}"
        + without_negatives_note(summary)
    )
    return 0


def run_build(args: argparse.Namespace) -> int:
    dataset = dataset_from(args)
    if torchrun_world()[0] == 0:
        check_output_folder(args, "dense-index", dataset)
    encoder_path = resolve_model(args.encoder)
    dataset.corpus  # noqa: B018  (a duplicate or malformed passage fails here, with its line, not after encoding)
    shards = plan_shards(args.num_shards, args.shard_id, args.encode_only)
    encoder = BiEncoder.from_pretrained(encoder_path).to_device(torchrun_device(args.device))
    check_factory(args.factory, encoder.dim)
    shards_dir = args.out.with_name(args.out.name + ".shards")
    started = time.perf_counter()
    for shard_id in shards.shard_ids:
        encode_corpus_shard(
            encoder,
            dataset.corpus_path,
            shards_dir,
            shard_id,
            shards.num_shards,
            args.batch_size,
            precision=args.precision,
        )
    encode_seconds = time.perf_counter() - started
    if not shards.builds_index:
        print(f"encoded shard(s) {shards.shard_ids} into {shards_dir} in {encode_seconds:.0f} s")
        return 0
    wait_for_shards(shards_dir, shards.num_shards)
    meta = build_index(
        encoder_path,
        encoder,
        dataset.corpus_path,
        shards_dir,
        args.out,
        shards.num_shards,
        args.factory,
        encode_seconds=encode_seconds,
    )
    write_config(args.out / "config.json", args)
    remove_owned(shards_dir, "index-shards")
    print(
        f"indexed {meta.count} passages ({meta.factory}, dim {meta.dim}) into {args.out}; encoding {encode_seconds:.0f} s, index {meta.build_seconds:.1f} s"
    )
    return 0


def run_search(args: argparse.Namespace) -> int:
    dataset = dataset_from(args)
    check_output_file(args.out, "TREC run", dataset)
    index = DenseIndex(args.index, nprobe=args.nprobe, ef_search=args.ef_search, refine_factor=args.refine_factor)
    index.check(dataset.corpus_fingerprint, resolve_model(args.encoder) if args.encoder else None)
    queries = dataset.split_queries(args.split)
    started = time.perf_counter()
    run, _ = dense_search(index, queries, args.k, args.batch_size, device=args.device)
    seconds = time.perf_counter() - started
    write_run(run, args.out, tag="dense")
    write_config(args.out.with_name(args.out.name + ".config.json"), args, seconds=seconds)
    print(f"searched {len(queries)} queries in {seconds:.1f} s; wrote {args.out}")
    return 0
