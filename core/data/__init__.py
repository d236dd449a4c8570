"""Where data enters: BEIR corpus/queries/qrels (`beir`), `--dataset` resolution (`sources`), TREC runs
(`runs`), training groups (`groups`) and the dev split carved from train (`splits`). Imports only from `core`."""

from core.data.beir import BeirDataset, Corpus, Qrels
from core.data.groups import TrainingGroup, read_groups, read_mined_groups, write_groups
from core.data.runs import Run, read_run, write_run
from core.data.sources import open_dataset

__all__ = [
    "BeirDataset",
    "Corpus",
    "Qrels",
    "Run",
    "TrainingGroup",
    "open_dataset",
    "read_groups",
    "read_mined_groups",
    "read_run",
    "write_groups",
    "write_run",
]
