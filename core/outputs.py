"""Who owns an output path: tandem replaces or deletes only what it can prove it wrote.

Every folder tandem writes as a whole (an index, a BM25 index, a training output, a run folder, each
stage folder inside it, a report folder) carries a marker file, `.tandem-output.json`, naming its kind.
Before a command writes, it asks here whether its `--out` may be used:

- a missing path or an empty folder: yes;
- a folder whose marker names the same kind: yes (resuming, rebuilding, `--force`/`--overwrite`);
- anything else (a file where a folder goes, a folder of another kind, a folder holding files tandem did
  not write, a dataset folder or a folder inside or around one): no, with one line naming what is there.

A file output (a TREC run, a groups file) may replace an earlier file of the same kind, never a file of
anything else, a folder, a dataset's own file or one of the command's own inputs. Folders written before
markers existed are recognised by the files only tandem writes there (`LEGACY_SIGNS`), so existing runs
keep resuming.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

from core.atomic import atomic_file
from core.errors import TandemError

MARKER = ".tandem-output.json"

KINDS = {
    "bm25-index": "a BM25 index",
    "dense-index": "a dense index",
    "training": "a training output",
    "run": "a `tandem run` folder",
    "runs": "a multi-dataset `tandem run` folder",
    "stage": "a `tandem run` stage folder",
    "report": "a report folder",
    "index-shards": "a folder of encoded index shards",
    "index-shard": "an encoded index shard",
    "dataset-cache": "a downloaded dataset",
}
"""Each kind of folder tandem writes, with how a message names it."""


def _stage_config(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"mode", "dataset"} <= set(config)


LEGACY_SIGNS: dict[str, Callable[[Path], bool]] = {
    "bm25-index": lambda folder: (folder / "tandem-bm25.json").is_file(),
    "dense-index": lambda folder: (folder / "meta.json").is_file() and (folder / "docids.txt").is_file(),
    "training": lambda folder: (
        (folder / "training_config.json").is_file()
        or (folder / "loss.csv").is_file()
        or (folder / "command.json").is_file()
        or any(folder.glob("checkpoint-*/training_state.pt"))
    ),
    "run": lambda folder: (folder / "run.log").is_file() and any(_stage_config(d) for d in folder.iterdir()),
    "stage": _stage_config,
    "runs": lambda folder: any((entry / "run.log").is_file() for entry in folder.iterdir() if entry.is_dir()),
    "index-shard": lambda folder: (folder / "shard.json").is_file(),
    "index-shards": lambda folder: all(
        entry.name.startswith(("shard-", ".shard-", MARKER)) for entry in folder.iterdir()
    ),
}
"""How a folder tandem wrote before markers existed shows its kind: files only tandem writes there."""


def write_marker(folder: str | Path, kind: str, **details: object) -> None:
    """Mark `folder` as tandem's output of `kind` (with `details`, e.g. the dataset a run belongs to)."""
    if kind not in KINDS:
        raise ValueError(f"unknown output kind '{kind}'")
    with atomic_file(Path(folder) / MARKER) as out:
        json.dump({"kind": kind, **details}, out, indent=2, default=str)
        out.write("\n")


def read_marker(folder: str | Path) -> dict | None:
    """The marker of `folder` ({"kind": ..., ...}), a legacy folder's kind, or None when tandem cannot
    tell that it wrote the folder."""
    folder = Path(folder)
    try:
        marker = json.loads((folder / MARKER).read_text())
    except (OSError, ValueError):
        marker = None
    if isinstance(marker, dict) and marker.get("kind") in KINDS:
        return marker
    for kind, sign in LEGACY_SIGNS.items():
        try:
            if folder.is_dir() and sign(folder):
                return {"kind": kind, "legacy": True}
        except OSError:
            continue
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_not_protected(path: str | Path, protected: Iterable[str | Path], flag: str = "--out") -> None:
    """Refuse a `path` equal to, inside or around a protected folder (a dataset): writing there would
    overwrite or delete the user's data."""
    target = Path(path).expanduser().resolve()
    for folder in protected:
        folder = Path(folder).expanduser().resolve()
        if _inside(target, folder):
            raise TandemError(f"{flag} {path} is inside the dataset folder {folder}; write outputs elsewhere")
        if _inside(folder, target):
            raise TandemError(f"{flag} {path} holds the dataset folder {folder}; write outputs elsewhere")


def describe(folder: Path) -> str:
    """What a folder holds, for a refusal: 'N entries, e.g. NAME'."""
    entries = sorted(entry.name for entry in folder.iterdir())
    return f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, e.g. {entries[0]}"


def check_folder_output(
    path: str | Path, kind: str, protected: Iterable[str | Path] = (), flag: str = "--out"
) -> dict | None:
    """Refuse `path` as the output folder of `kind` unless it is missing, empty or tandem's output of
    that kind; returns its marker (None when missing or empty). Nothing is changed here."""
    path = Path(path)
    check_not_protected(path, protected, flag)
    if path.is_symlink() and not path.exists():
        raise TandemError(f"{flag} {path} is a broken symbolic link; choose another path")
    if path.exists() and not path.is_dir():
        raise TandemError(f"{flag} {path} is a file, not a folder; choose another path")
    if not path.exists():
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise TandemError(f"{flag} {path}: {parent} is a file, not a folder")
                break
        return None
    try:
        empty = not any(path.iterdir())
    except PermissionError:
        raise TandemError(f"{flag} {path} cannot be read (permission denied)") from None
    if empty:
        return None
    marker = read_marker(path)
    if marker is None:
        raise TandemError(
            f"{flag} {path} holds files tandem did not write ({describe(path)}); choose an empty or new folder"
        )
    if marker["kind"] != kind:
        raise TandemError(f"{flag} {path} is {KINDS[marker['kind']]}, not {KINDS[kind]}; choose another folder")
    return marker


def claim_folder(path: str | Path, kind: str, protected: Iterable[str | Path] = (), **details: object) -> Path:
    """Create `path` (after `check_folder_output`) and mark it as tandem's output of `kind`."""
    path = Path(path)
    marker = check_folder_output(path, kind, protected)
    path.mkdir(parents=True, exist_ok=True)
    if marker is None or marker.get("legacy") or any(marker.get(k) != v for k, v in details.items()):
        write_marker(path, kind, **details)
    return path


def remove_owned(path: str | Path, kind: str) -> None:
    """Delete `path` only if it is tandem's output of `kind` (or an empty folder); refuse otherwise."""
    path = Path(path)
    if not path.exists():
        return
    check_folder_output(path, kind)
    shutil.rmtree(path)


FileCheck = Callable[[Path], bool]
"""Whether an existing file is tandem's output of a given kind (e.g. reads as a TREC run)."""


def check_file_output(
    path: str | Path,
    what: str,
    is_same_kind: FileCheck,
    protected: Iterable[str | Path] = (),
    inputs: Iterable[str | Path] = (),
    flag: str = "--out",
) -> None:
    """Refuse `path` as the output file `what` (e.g. 'TREC run') when it is a folder, one of the
    command's inputs, inside a dataset folder, or an existing file that is not a `what`."""
    path = Path(path)
    check_not_protected(path, protected, flag)
    resolved = path.expanduser().resolve()
    for source in inputs:
        if Path(source).expanduser().resolve() == resolved:
            raise TandemError(f"{flag} {path} is also an input of this command; write to another file")
    if path.is_dir():
        raise TandemError(f"{flag} {path} is a folder; give the path of the {what} file to write")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise TandemError(f"{flag} {path}: {parent} is a file, not a folder")
            break
    if path.is_file() and path.stat().st_size and not is_same_kind(path):
        raise TandemError(f"{flag} {path} exists and is not a {what}; tandem replaces only its own outputs")


def first_lines(path: Path, count: int = 5) -> list[str]:
    """Up to `count` non-empty lines from the start of a text file ([] when it is not text)."""
    lines: list[str] = []
    try:
        with open(path, encoding="utf-8-sig") as handle:
            for line in handle:
                if line.strip():
                    lines.append(line.rstrip("\n"))
                if len(lines) >= count:
                    break
    except (OSError, UnicodeDecodeError):
        return []
    return lines


def looks_like_trec_run(path: Path) -> bool:
    """Whether a file starts like a TREC run (`qid Q0 docid rank score tag`)."""

    def trec(line: str) -> bool:
        parts = line.split()
        if len(parts) != 6:
            return False
        try:
            int(parts[3])
            float(parts[4])
        except ValueError:
            return False
        return True

    lines = first_lines(path)
    return bool(lines) and all(trec(line) for line in lines)


def looks_like_jsonl(*keys: str) -> FileCheck:
    """A check that a file's first lines are JSON objects holding `keys` (a groups file, for one)."""

    def check(path: Path) -> bool:
        lines = first_lines(path)
        try:
            return bool(lines) and all(set(keys) <= set(json.loads(line)) for line in lines)
        except (ValueError, TypeError):
            return False

    return check


def looks_like_tsv_header(header: str) -> FileCheck:
    """A check that a file starts with `header` (e.g. `tandem evaluate --per-query`'s table)."""
    return lambda path: first_lines(path, 1) == [header]
