"""The output folder of a training command: empty, continued (`--resume`) or replaced (`--overwrite`).

Training into a folder that already holds a run used to restart silently and append a second loss
history; now the user says which of the two they meant."""

from __future__ import annotations

import shutil
from pathlib import Path

from core.errors import TandemError

TRAINING_FILES = ("training_config.json", "loss.csv", "command.json", "config.json", "bm25-negatives.jsonl")
"""Files whose presence marks a folder as a training output (final model, history, or its command)."""


def prepare_output_dir(out_dir: str | Path, resume: bool = False, overwrite: bool = False) -> Path:
    """Create `out_dir`, or accept an existing one only when it is empty, resumed, or overwritten.

    `--overwrite` deletes the folder only if it is a training output, so a mistyped `--out` (a home
    folder, a dataset) is never erased."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise TandemError(f"--out {out_dir} is a file, not a folder")
    entries = sorted(out_dir.iterdir()) if out_dir.is_dir() else []
    if entries and not resume:
        if not overwrite:
            raise TandemError(
                f"--out {out_dir} is not empty ({len(entries)} entries, e.g. {entries[0].name}): pass --resume to "
                "continue the training in it, --overwrite to start again, or choose an empty folder"
            )
        if not is_training_output(out_dir):
            raise TandemError(
                f"--overwrite refused: {out_dir} does not look like a training output (no checkpoint-* or "
                f"{', '.join(TRAINING_FILES)}), so it is left as it is; choose an empty --out"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return out_dir


def is_training_output(out_dir: Path) -> bool:
    return any((out_dir / name).exists() for name in TRAINING_FILES) or any(out_dir.glob("checkpoint-*"))
