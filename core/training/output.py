"""The output folder of a training command: empty, continued (`--resume`) or replaced (`--overwrite`).

Training into a folder that already holds a run used to restart silently and append a second loss
history; now the user says which of the two they meant. Either way only a folder tandem marked as a
training output (`core.outputs`) is continued or replaced: a mistyped `--out` (a home folder, a dataset)
is refused before anything is loaded."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from core.errors import TandemError
from core.outputs import check_folder_output, claim_folder


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
