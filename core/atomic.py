"""Write files and directories so that a crash never leaves a half-written artifact in place."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open a temporary file beside `path`; it replaces `path` only if the block finishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the result gets the user's usual mode
    try:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as handle:
            yield handle
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path, kind: str) -> Iterator[Path]:
    """Yield an empty temporary directory beside `path`; it becomes `path` only if the block finishes.

    The folder is marked as tandem's output of `kind` (`core.outputs`). An existing `path` is replaced only
    when it is empty or tandem's output of the same kind: anything else is refused before the work starts
    and again before the swap, so a user's folder is never deleted."""
    from core.outputs import check_folder_output, write_marker

    path = Path(path)
    check_folder_output(path, kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(path), suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    try:
        yield tmp
        write_marker(tmp, kind)
        if path.exists():
            check_folder_output(path, kind)
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def publish_model(out_dir: str | Path, save: Callable[[Path], None], marker: str, marker_text: str) -> None:
    """Save a final model into `out_dir` (which may hold checkpoints) so that a kill never leaves a folder
    that looks finished: `save` writes into a staging folder, its entries are moved in, and the `marker`
    file (e.g. training_config.json, which resuming and `tandem run` read as "done") is written last."""
    out_dir = Path(out_dir)
    staging = out_dir / ".final.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    save(staging)
    follow_umask(staging)
    for entry in sorted(staging.iterdir()):
        target = out_dir / entry.name
        if target.is_dir():
            shutil.rmtree(target)
        os.replace(entry, target)
    staging.rmdir()
    with atomic_file(out_dir / marker) as out:
        out.write(marker_text)


def follow_umask(folder: Path) -> None:
    """Give every file under `folder` the user's usual mode: some writers (safetensors, for one) create
    files private to the owner, unlike every other output."""
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            os.chmod(path, 0o666 & ~_umask())


def remove_stale_temporaries(path: str | Path) -> int:
    """Delete the temporaries that killed writers of `path` left beside it; returns how many.

    A temporary's name carries its writer's pid (`.NAME.PID.XXXX.tmp`), so one whose writer still runs
    (a concurrent writer) is left alone."""
    path = Path(path)
    removed = 0
    for candidate in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        written_by = re.fullmatch(r"(\d+)\.[A-Za-z0-9_]+\.tmp", candidate.name[len(path.name) + 2 :])
        if written_by is None or _alive(int(written_by.group(1))):
            continue
        if candidate.is_dir() and not candidate.is_symlink():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
        removed += 1
    return removed


def _prefix(path: Path) -> str:
    return f".{path.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
