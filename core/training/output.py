"""The output folder of a training command: empty, continued (`--resume`) or replaced (`--overwrite`).

Training into a folder that already holds a run used to restart silently and append a second loss
history; now the user says which of the two they meant. Either way only a folder tandem marked as a
training output (`core.outputs`) is continued or replaced: a mistyped `--out` (a home folder, a dataset)
is refused before anything is loaded."""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

from core.atomic import publish_model
from core.errors import TandemError
from core.outputs import check_folder_output, claim_folder
from core.training.loop import NOT_TRAINING_OPTIONS

log = logging.getLogger(__name__)


def prepare_output_dir(
    out_dir: str | Path, resume: bool = False, overwrite: bool = False, protected: Iterable[str | Path] = ()
) -> Path:
    """Create `out_dir`, or accept an existing one only when it is empty, resumed, or overwritten, and
    always only when it is empty or tandem's training output (never inside or around `protected`)."""
    out_dir = Path(out_dir)
    marker = check_folder_output(out_dir, "training", protected)
    if marker is not None and not resume:
        if not overwrite:
            entries = sorted(out_dir.iterdir())
            raise TandemError(
                f"--out {out_dir} is not empty ({len(entries)} entries, e.g. {entries[0].name}): pass --resume to "
                "continue the training in it, --overwrite to start again, or choose an empty folder"
            )
        shutil.rmtree(out_dir)
    return claim_folder(out_dir, "training")


def finished_earlier(out_dir: Path, config: object) -> bool:
    """Whether `out_dir` holds a final model trained with exactly `config` (resuming it has nothing to do);
    a final model trained with other options is refused, as resuming it cannot apply them."""
    marker = Path(out_dir) / "training_config.json"
    try:
        saved = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    wanted = json.loads(json.dumps(asdict(config), default=str))
    changed = sorted(
        k for k in set(saved) | set(wanted) if saved.get(k) != wanted.get(k) and k not in NOT_TRAINING_OPTIONS
    )
    if changed:
        listed = ", ".join(f"{k} {saved.get(k)!r} -> {wanted.get(k)!r}" for k in changed)
        raise TandemError(
            f"--resume: {out_dir} holds a model finished with other options ({listed}); start again with --overwrite"
        )
    return True


def finished_summary(out_dir: Path, config: object, groups: int) -> dict | None:
    """What a trainer returns when resuming finds `out_dir` finished with exactly `config` (nothing left
    to do), else None."""
    if not finished_earlier(out_dir, config):
        return None
    log.info("%s holds the final model of this training already", out_dir)
    return {"steps": 0, "seconds": 0.0, "groups": groups, "finished_earlier": True}


def finish_training(out_dir: Path, save: Callable[[Path], None], config: object, card: str) -> None:
    """Publish the final model (`training_config.json` last: the marker resuming and `tandem run` read as
    done), write its model card (README.md), and drop what only an unfinished training needs: checkpoints
    (several times the model's size) and the best weights kept for early stopping."""
    config_text = json.dumps(asdict(config), indent=2, default=str) + "\n"
    publish_model(out_dir, save, "training_config.json", config_text)
    (Path(out_dir) / "README.md").write_text(card)
    for checkpoint in Path(out_dir).glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)
    (Path(out_dir) / "best-weights.pt").unlink(missing_ok=True)


def model_card(kind: str, config: object, summary: dict, groups: int) -> str:
    """A short model card: what the model is, what it started from, how it was trained, on how much."""
    options = asdict(config)
    start = options.get("model") or "sentence-transformers/all-MiniLM-L6-v2"
    lines = [
        "---",
        "library_name: transformers",
        "tags: [tandem, "
        + ("cross-encoder, reranking" if kind == "cross-encoder" else "sentence-transformers, retrieval")
        + "]",
        f"base_model: {start}",
        "---",
        "",
        f"# tandem {kind}",
        "",
        f"Trained by tandem from `{start}` with the {options.get('loss', 'nll')} loss on "
        f"{groups:,} training groups, {summary.get('steps', 0):,} steps.",
    ]
    if summary.get("averaged_steps"):
        lines.append(
            f"The weights are the mean of {summary['averaged_steps']} points of the training's tail "
            f"(every {options['average_every']} steps from {options['average_from']:g} of the schedule on)."
        )
    elif summary.get("best_dev") is not None:
        lines.append(
            f"Early stopping on dev: best dev nDCG@10 {summary['best_dev']:.4f} at step {summary['best_step']:,} "
            "(the weights kept)."
        )
    lines += ["", "Recipe (training_config.json has every option):", ""]
    shown = ("learning_rate", "head_learning_rate", "epochs", "group_size", "batch_queries", "positives",
             "positive_depth", "negative_depth", "max_length", "eval_every", "patience", "average_from", "seed")  # fmt: skip
    lines += [f"- {name}: {options[name]}" for name in shown if name in options]
    return "\n".join(lines) + "\n"
