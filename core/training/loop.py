"""The training loop both trainers share: optimiser and schedule, mixed precision, gradient accumulation,
DDP under torchrun, periodic checkpoints with exact resume, and a CSV loss log.

A trainer supplies the model, a function that yields the batches of one epoch (deterministic for
a given epoch, so a resumed run can skip the batches it already took) and a function that turns a
batch into a loss. Everything else lives here, once.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from transformers import get_linear_schedule_with_warmup

from core.atomic import follow_umask
from core.data.groups import GroupBatch, TrainingGroup, epoch_batches
from core.errors import TandemError
from core.precision import autocast, autocast_dtype
from core.progress import progress_bar
from core.training.averaging import TailAverage
from core.training.config import TrainingConfig, scheduled_steps
from core.training.distributed import DistributedContext
from core.training.early_stopping import DevCurve, DevEvaluator
from core.training.state import TrainState, rng_state, saved_checkpoints, set_rng_state, unwrap

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class LossLog:
    """Appends `step,epoch,loss,learning_rate,seconds` rows to a CSV (kept across resumes)."""

    def __init__(self, path: Path, enabled: bool) -> None:
        self.path = path
        self.enabled = enabled
        if enabled and not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("step,epoch,loss,learning_rate,seconds\n")

    def keep_until(self, step: int) -> None:
        """Drop rows after `step` (written after the checkpoint a resumed run restarts from), so a
        resumed run's log has each step once."""
        lines = self.path.read_text().splitlines() if self.enabled and self.path.is_file() else []
        if lines:
            header, *rows = lines
            kept = [row for row in rows if int(row.split(",", 1)[0]) <= step]
            self.path.write_text("\n".join([header, *kept]) + "\n")

    def write(self, step: int, epoch: float, loss: float, lr: float, seconds: float) -> None:
        if self.enabled:
            with open(self.path, "a", newline="") as out:
                csv.writer(out).writerow([step, f"{epoch:.4f}", f"{loss:.6f}", f"{lr:.3e}", f"{seconds:.1f}"])


class TrainLoop:
    """Runs `epochs` over the batches from `epoch_batches(epoch)`; `loss_fn(batch)` returns the loss.

    `save_model(dir)` writes the model in Hugging Face format; the loop adds the optimiser, scheduler,
    RNG and position so `resume=True` continues exactly where the last checkpoint left off."""

    def __init__(
        self,
        model: torch.nn.Module,
        config: TrainingConfig,
        out_dir: Path,
        batches_per_epoch: int,
        context: DistributedContext,
        save_model: Callable[[Path], None],
    ) -> None:
        self.model = model
        self.config = config
        self.out_dir = Path(out_dir)
        self.context = context
        self.save_model = save_model
        self.batches_per_epoch = batches_per_epoch
        self.steps_per_epoch = max(1, batches_per_epoch // config.grad_accumulation)
        self.total_steps = scheduled_steps(self.steps_per_epoch, config.epochs, config.min_steps, config.max_steps)
        self.num_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        self.optimizer = torch.optim.AdamW(parameter_groups(unwrap(model), config), lr=config.learning_rate)
        self.scheduler = get_linear_schedule_with_warmup(
            self.optimizer, int(config.warmup_ratio * self.total_steps), self.total_steps
        )
        dtype = autocast_dtype(config.precision, context.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=dtype == torch.float16)
        self.state = TrainState()
        self.loss_log = LossLog(self.out_dir / "loss.csv", context.is_main)
        self.dev_curve = DevCurve(self.out_dir, context.is_main)
        self.average = (
            TailAverage.of_schedule(self.total_steps, config.average_from, config.average_every)
            if config.average_from
            else None
        )
        if context.is_main:  # staging folders of a killed save (one trainer per folder: none is live)
            for staging in [*self.out_dir.glob(".checkpoint-*.tmp"), self.out_dir / ".final.tmp"]:
                shutil.rmtree(staging, ignore_errors=True)

    # -- checkpoints ----------------------------------------------------------------------------

    def checkpoints(self) -> list[Path]:
        return saved_checkpoints(self.out_dir)

    def save_checkpoint(self) -> None:
        if not self.context.is_main:
            return
        final = self.out_dir / f"checkpoint-{self.state.step}"
        staging = self.out_dir / f".checkpoint-{self.state.step}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        self.save_model(staging)
        follow_umask(staging)
        torch.save(
            {
                "model": unwrap(self.model).state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(),
                "state": asdict(self.state),
                "rng": rng_state(),
                "config": resumable_options(self.config),
                "average": self.average.state_dict() if self.average else None,
            },
            staging / "training_state.pt",
        )
        shutil.rmtree(final, ignore_errors=True)
        os.replace(staging, final)
        for old in self.checkpoints()[: -self.config.keep_checkpoints]:
            shutil.rmtree(old, ignore_errors=True)

    def resume(self) -> bool:
        """Load the newest checkpoint, if any; returns whether one was found."""
        checkpoints = self.checkpoints()
        if not checkpoints:  # nothing to continue from: start again, with a fresh history
            self.loss_log.keep_until(0)
            self.dev_curve.keep_until(0)
            log.info("no checkpoint in %s: training from step 0", self.out_dir)
            return False
        path = checkpoints[-1] / "training_state.pt"
        try:  # weights_only: a crafted checkpoint cannot run code on --resume
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 (pickle and torch raise many types for a bad file)
            reason = f"{type(err).__name__}: {err}"[:300]
            raise TandemError(f"{path}: not a readable tandem training state ({reason})") from None
        changed = {
            name: (before, resumable_options(self.config).get(name))
            for name, before in saved.get("config", {}).items()
            if resumable_options(self.config).get(name) != before
        }
        if changed:
            listed = ", ".join(f"{name} {old!r} -> {new!r}" for name, (old, new) in sorted(changed.items()))
            raise TandemError(
                f"--resume: {checkpoints[-1]} was trained with other options ({listed}); resume with the same "
                "options, or start again with --overwrite"
            )
        unwrap(self.model).load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        self.scaler.load_state_dict(saved["scaler"])
        self.state = TrainState(**saved["state"])
        if self.average and saved.get("average"):
            self.average.load_state_dict(saved["average"])
        set_rng_state(saved["rng"])
        self.loss_log.keep_until(self.state.step)
        self.dev_curve.keep_until(self.state.step)
        log.info("resumed from %s (step %d)", checkpoints[-1], self.state.step)
        return True

    # -- the loop -------------------------------------------------------------------------------

    def run(
        self,
        epoch_batches: Callable[[int], Iterable[Any]],
        loss_fn: Callable[[Any], Tensor],
        evaluate: DevEvaluator | None = None,
    ) -> dict[str, Any]:
        """Train until the scheduled steps are done, or, with `evaluate` and `config.eval_every`, until
        `config.patience` evaluations in a row bring no better dev figure; then finish with the mean of the
        tail's weights (`config.average_from`), else with the best evaluation's weights."""
        config, device = self.config, self.context.device
        evaluating = evaluate is not None and config.eval_every > 0
        self.model.train()
        started = time.perf_counter()
        running, count = 0.0, 0
        bar = progress_bar(
            total=self.total_steps,
            initial=self.state.step,
            desc="training",
            unit=" steps",
            disable=None if self.context.is_main else True,
        )
        while self.state.step < self.total_steps and self.state.epoch < self.num_epochs:
            batches = _skip(epoch_batches(self.state.epoch), self.state.batch_in_epoch)
            for batch in batches:
                with autocast(config.precision, device):
                    loss = loss_fn(batch) / config.grad_accumulation
                self.scaler.scale(loss).backward()
                running += loss.item() * config.grad_accumulation
                count += 1
                self.state.batch_in_epoch += 1
                if self.state.batch_in_epoch % config.grad_accumulation:
                    continue
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), config.max_grad_norm)
                self.scaler.step(self.optimizer)
                self.scaler.update()
                self.scheduler.step()
                self.optimizer.zero_grad(set_to_none=True)
                self.state.step += 1
                bar.update(1)
                if self.state.step % config.log_every == 0 or self.state.step == self.total_steps:
                    epoch_pos = self.state.epoch + self.state.batch_in_epoch / max(1, self.batches_per_epoch)
                    self.loss_log.write(
                        self.state.step,
                        epoch_pos,
                        running / count,
                        self.scheduler.get_last_lr()[0],
                        time.perf_counter() - started,
                    )
                    bar.set_postfix(loss=f"{running / count:.4f}")
                    running, count = 0.0, 0
                if evaluating and (self.state.step % config.eval_every == 0 or self.state.step == self.total_steps):
                    self.dev_curve.record(self.state, evaluate(), self.model)
                    self.model.train()
                    bar.set_postfix(dev=f"{self.state.best_score:.4f}@{self.state.best_step}")
                if self.average and self.average.due(self.state.step):
                    self.average.add(unwrap(self.model).state_dict())
                if config.save_every and self.state.step % config.save_every == 0:
                    self.save_checkpoint()
                if self.state.step >= self.total_steps or self._patience_ran_out():
                    break
            else:
                self.optimizer.zero_grad(set_to_none=True)  # an unfinished accumulation ends with its epoch
                self.state.epoch += 1
                self.state.batch_in_epoch = 0
                continue
            break
        bar.close()
        summary: dict[str, Any] = {"steps": self.state.step, "seconds": time.perf_counter() - started}
        if self.average and self.average.count:
            self.average.apply(self.model)
            summary["averaged_steps"] = self.average.count
        elif evaluating:
            self.dev_curve.restore_best(self.state, self.model)
        if evaluating:
            summary.update(
                best_step=self.state.best_step,
                best_dev=self.state.best_score,
                stopped_early=self._patience_ran_out(),
                dev_curve=self.dev_curve.curve(),
            )
        return summary

    def _patience_ran_out(self) -> bool:
        return bool(self.config.patience) and self.state.stale_evaluations >= self.config.patience


NOT_TRAINING_OPTIONS = ("device", "save_every", "keep_checkpoints", "log_every")
"""Options a resumed training may change: where and how often it saves or logs, not what it learns."""


def resumable_options(config: TrainingConfig) -> dict[str, Any]:
    """The options a checkpoint records and a resume must repeat (all but `NOT_TRAINING_OPTIONS`)."""
    return {name: value for name, value in asdict(config).items() if name not in NOT_TRAINING_OPTIONS}


def train_on_groups(
    model: torch.nn.Module,
    groups: list[TrainingGroup],
    config: TrainingConfig,
    out_dir: Path,
    context: DistributedContext,
    save_model: Callable[[Path], None],
    loss_fn: Callable[[GroupBatch], Tensor],
    resume: bool = False,
    with_teacher: bool = False,
    evaluate: DevEvaluator | None = None,
    positives: int = 1,
) -> dict[str, Any]:
    """Both trainers' outer loop: epochs of `config.batch_queries` groups per process, each group
    resampled to `config.group_size` passages per epoch."""
    batches_per_epoch = len(groups) // (config.batch_queries * context.world_size)
    if batches_per_epoch == 0:
        raise TandemError(
            f"{len(groups)} groups are fewer than one batch of {config.batch_queries} x {context.world_size}"
        )
    loop = TrainLoop(model, config, out_dir, batches_per_epoch, context, save_model)
    if resume:
        loop.resume()
    seed, size, per_batch = config.seed, config.group_size, config.batch_queries
    return loop.run(
        lambda epoch: epoch_batches(
            groups, size, per_batch, seed, epoch, context.rank, context.world_size, with_teacher, positives
        ),
        loss_fn,
        evaluate,
    )


def parameter_groups(model: torch.nn.Module, config: TrainingConfig) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and norms; `config.head_learning_rate` (when set) for
    the parameters the start checkpoint did not have (`model.new_parameter_names`), such as a freshly
    initialised classification head, which otherwise sits near a constant output for many steps."""
    new_names = set(getattr(model, "new_parameter_names", ())) if config.head_learning_rate else set()
    groups: dict[tuple[bool, bool], list[Tensor]] = {}
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            groups.setdefault((name in new_names, _no_decay(name)), []).append(parameter)
    return [
        {
            "params": params,
            "weight_decay": 0.0 if no_decay else config.weight_decay,
            "lr": config.head_learning_rate if is_new else config.learning_rate,
        }
        for (is_new, no_decay), params in sorted(groups.items())
    ]


def _no_decay(name: str) -> bool:
    return name.endswith("bias") or "LayerNorm" in name or "layer_norm" in name


def _skip(batches: Iterable[Any], count: int) -> Iterator[Any]:
    for index, batch in enumerate(batches):
        if index >= count:
            yield batch
