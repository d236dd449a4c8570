"""Turn a `--dataset` argument into a local BEIR folder: a path (a BEIR folder, or a folder of Hugging Face
`datasets` tables or TREC topics that `core.data.convert` turns into one), `irds:<id>`, `$TANDEM_DATA_DIR/NAME`,
the datasets the checkout ships, the cache, or a download of the public BEIR zip (when online)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from core.atomic import atomic_dir
from core.data.beir import BeirDataset
from core.errors import TandemError
from core.progress import progress_bar

BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/{name}.zip"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


SHIPPED = Path(__file__).resolve().parents[2] / "data"
"""The datasets a checkout ships (SciFact, so the first command runs offline): after $TANDEM_DATA_DIR,
before the cache and a download."""


def cache_dir() -> Path:
    """Where downloads and Java caches go: `$TANDEM_CACHE`, else ~/.cache/tandem."""
    return Path(os.environ.get("TANDEM_CACHE", Path.home() / ".cache" / "tandem"))


def offline() -> bool:
    return any(os.environ.get(v, "") not in ("", "0") for v in ("TANDEM_OFFLINE", "HF_DATASETS_OFFLINE"))


def resolve_dataset(spec: str | Path) -> Path:
    """Find the folder for `spec`: an existing path, a name under $TANDEM_DATA_DIR, among the datasets the
    checkout ships (`data/`), or in the cache, else download BEIR's zip for that name."""
    path = Path(spec).expanduser()
    if str(spec).startswith("irds:"):
        from core.data.convert import from_ir_datasets

        return from_ir_datasets(str(spec)[len("irds:") :], cache_dir())
    if path.is_file() and path.name == "corpus.jsonl":  # a path to the corpus names its folder
        path = path.parent
    if path.is_dir():
        from core.data.convert import convert_folder, needs_conversion

        return convert_folder(path, cache_dir()) if needs_conversion(path) else path
    name = str(spec)
    if os.sep in name or not _NAME.match(name):
        raise TandemError(f"dataset folder '{spec}' does not exist")
    roots = [Path(p) for p in os.environ.get("TANDEM_DATA_DIR", "").split(os.pathsep) if p]
    for root in [*roots, SHIPPED, cache_dir() / "beir"]:
        if (root / name / "corpus.jsonl").is_file():
            return root / name
    return download_beir(name)


def open_dataset(spec: str | Path, strict: bool = False) -> BeirDataset:
    root = resolve_dataset(spec)
    given = Path(spec).expanduser()
    source = given.parent if given.is_file() else given if given.is_dir() else root
    return BeirDataset(root, strict=strict, source=source)


def download_beir(name: str) -> Path:
    """Download and unpack BEIR's zip for `name` into the cache; nothing is left behind on failure."""
    target = cache_dir() / "beir" / name
    url = BEIR_URL.format(name=name)
    hint = (
        f"point --dataset at a local BEIR folder (with corpus.jsonl, queries.jsonl, qrels/), "
        f"or set TANDEM_DATA_DIR to a folder that contains '{name}/'"
    )
    if offline():
        raise TandemError(f"dataset '{name}' is not available locally and downloads are off (offline mode): {hint}")
    with tempfile.TemporaryDirectory(prefix="tandem-download-") as tmp:
        archive = Path(tmp) / f"{name}.zip"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, open(archive, "wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with progress_bar(
                    total=total, unit="B", unit_scale=True, desc=f"downloading {name}", disable=None
                ) as bar:
                    for block in iter(lambda: response.read(1 << 20), b""):
                        out.write(block)
                        bar.update(len(block))
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise TandemError(f"could not download dataset '{name}' from {url} ({reason}); {hint}") from None
        with atomic_dir(target, "dataset-cache") as staging:
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
            unpacked = Path(tmp) / name
            if not (unpacked / "corpus.jsonl").is_file():
                raise TandemError(f"{url}: archive has no {name}/corpus.jsonl")
            for item in unpacked.iterdir():
                shutil.move(str(item), staging / item.name)
    return target
