"""The trainer every method plugs into, and ``evaluate``.

SGD (Nesterov) with the seed's schedule, warm-up, gradient accumulation, EMA, AMP and
channels_last on CUDA, multi-scale, early stopping, a checkpoint every epoch (atomic) and an
exact ``resume``. Methods change training through :mod:`yolo.callbacks`, never by editing
this file.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from yolo.callbacks import Callback, Step
from yolo.config import YoloBlock
from yolo.data.dataset import DetectionDataset
from yolo.data.loader import create_dataloader, set_loader_epoch
from yolo.data.spec import DatasetSpec, load_spec
from yolo.ema import ModelEMA
from yolo.evaluation import Evaluation, evaluate
from yolo.inherit import InheritError, inherit_weights
from yolo.io import check_same_classes, load_checkpoint, read_darknet_weights, save_checkpoint
from yolo.loss import YoloLoss
from yolo.metrics import names as m
from yolo.model import Darknet
from yolo.resources import check_fits
from yolo.train_config import Hyp, TrainConfig
from yolo.zoo import ZOO, anchors_for_size, cfg_anchors, create_model, resolve_cfg

__all__ = ["NonFiniteLossError", "Trainer", "evaluate", "select_device"]


class NonFiniteLossError(ValueError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def select_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device '{name}' requested but CUDA is not available; use cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device '{name}'; use auto, cpu, cuda or cuda:N") from None


def lr_factor(hyp: Hyp, epochs: int) -> Callable[[int], float]:
    """The learning-rate multiplier per epoch: lr0 -> lr0 * 10**lrf."""
    final = 10**hyp.lrf
    if hyp.schedule == "cosine":
        return lambda e: final + (1 - final) * (1 + math.cos(math.pi * e / epochs)) / 2
    return lambda e: 10 ** (hyp.lrf * e / epochs)


def build_optimizer(model: nn.Module, hyp: Hyp) -> torch.optim.SGD:
    """Three groups: conv weights (with weight decay), other weights, biases (no decay)."""
    decay, plain, biases = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.endswith(".bias"):
            biases.append(p)
        elif p.dim() == 4:
            decay.append(p)
        else:
            plain.append(p)
    optimizer = torch.optim.SGD(plain, lr=hyp.lr0, momentum=hyp.momentum, nesterov=True)
    optimizer.add_param_group({"params": decay, "weight_decay": hyp.weight_decay})
    optimizer.add_param_group({"params": biases})
    return optimizer


def build_model(config: TrainConfig, anchors: Sequence[Sequence[float]] | None,
                names: Sequence[str]) -> Darknet:  # fmt: skip
    """The model a run starts from.

    A project checkpoint in ``weights`` brings its own architecture (cfg text: classes,
    width, anchors) and weights; otherwise ``model`` is built at ``width`` with anchors
    (given at 416 px) scaled to ``img_size``, and darknet ``.weights`` are loaded if given.
    """
    weights = config.weights
    if weights and not weights.endswith(".weights"):
        checkpoint = load_checkpoint(weights)
        trained_on = checkpoint.metadata.get("names")
        if trained_on is not None:
            check_same_classes(weights, trained_on, names, str(config.data))
        return checkpoint.model
    anchors = anchors or cfg_anchors(resolve_cfg(config.model))
    model = create_model(config.model, num_classes=len(names), width=config.width,
                         anchors=anchors_for_size(anchors, config.img_size))  # fmt: skip
    if weights:
        read_darknet_weights(model, weights)
    if config.inherit:
        parent = load_checkpoint(config.inherit)
        trained_on = parent.metadata.get("names")
        if trained_on is not None:
            check_same_classes(config.inherit, trained_on, names, str(config.data))
        try:
            inherit_weights(model, parent.model)
        except InheritError as exc:
            raise ValueError(f"{config.inherit}: cannot be the parent of {config.model}: "
                             f"{exc}") from None  # fmt: skip
    return model


def validation_loader(config: TrainConfig, spec: DatasetSpec) -> DataLoader:
    """The loader a run validates on: ``val_split``, or the test split where the spec has
    no such split."""
    val_split = config.val_split if spec.splits.get(config.val_split) else "test"
    return create_dataloader(
        spec, val_split, img_size=config.img_size, batch_size=config.batch_size * 2,
        workers=config.workers, cache=config.cache, seed=config.seed,
    )  # fmt: skip


class Trainer:
    """Train a detector on a dataset spec; see :class:`TrainConfig` for the settings."""

    def __init__(
        self,
        config: TrainConfig,
        *,
        callbacks: Sequence[Callback] = (),
        model: Darknet | None = None,
        progress: bool = True,
        log: Callable[[str], None] = print,
    ) -> None:
        self.config, self.hyp = config, config.hyp
        self.device = select_device(config.device)
        self.callbacks = list(callbacks)
        self.progress, self.log = progress, log
        self.out = Path(config.out)
        spec = load_spec(config.data)
        self.train_loader = create_dataloader(
            spec, "train", img_size=config.img_size, batch_size=config.batch_size,
            augment=self.hyp.augment, shuffle=True, workers=config.workers,
            pin_memory=self.device.type == "cuda", cache=config.cache, seed=config.seed,
            multi_scale=self._multi_scale_range() if config.multi_scale else None,
        )  # fmt: skip
        self.val_loader = validation_loader(config, spec)
        self.names = cast(DetectionDataset, self.train_loader.dataset).names
        torch.manual_seed(config.seed)
        if model is None:
            model = build_model(config, spec.anchors, self.names)
            self._note_rewritten_heads(config, len(self.names))
        if model.num_classes != len(self.names):
            raise ValueError(
                f"the model predicts {model.num_classes} classes but {config.data} has "
                f"{len(self.names)}"
            )
        # before the first batch: a size that cannot fit is refused with the estimate
        check_fits(model.cfg, self._multi_scale_range()[1] if config.multi_scale
                   else config.img_size, batch=config.batch_size, training=True)  # fmt: skip
        self.model = model.to(self.device)
        self.amp = config.amp and self.device.type == "cuda"
        if self.device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        self.loss = YoloLoss(self.model, self.hyp.loss)
        self.optimizer = build_optimizer(self.model, self.hyp)
        for group in self.optimizer.param_groups:
            group["initial_lr"] = self.hyp.lr0
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lr_factor(self.hyp, config.epochs)
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ema = ModelEMA(self.model, self.hyp.ema_decay) if config.ema else None
        self.start_epoch, self.best_fitness, self.best_epoch = 0, -1.0, -1
        self.history: list[dict[str, float]] = []
        self.last_evaluation: Evaluation | None = None
        for callback in self.callbacks:
            callback.setup(self)
        self.extra_optimizers = [o for cb in self.callbacks for o in cb.optimizers()]
        self.taps = tuple(sorted({t for cb in self.callbacks for t in cb.taps}))

    def _note_rewritten_heads(self, config: TrainConfig, classes: int) -> None:
        """A user's cfg written for another class count gets new heads: said, not done
        silently (the prediction convs start untrained)."""
        if config.weights and not config.weights.endswith(".weights"):
            return  # a checkpoint brings its own heads (its classes are checked)
        if config.model in ZOO:
            return
        written = {b.classes for b in resolve_cfg(config.model).blocks if isinstance(b, YoloBlock)}
        if written != {classes}:
            self.log(f"note: {config.model}: [yolo] classes={','.join(map(str, sorted(written)))}"
                     f" but {config.data} has {classes}; the heads and prediction convs are "
                     f"rebuilt for {classes} classes (untrained)")  # fmt: skip

    def _multi_scale_range(self) -> tuple[int, int]:
        size = self.config.img_size
        low = max(32, int(size * 2 / 3) // 32 * 32)
        return low, max(low, int(size * 3 / 2) // 32 * 32)

    @property
    def eval_model(self) -> Darknet:
        return cast(Darknet, self.ema.model) if self.ema is not None else self.model

    # ------------------------------------------------------------------ training

    def fit(self) -> dict[str, float]:
        """Train from ``start_epoch`` to the end (or early stop / time budget)."""
        started = time.perf_counter()
        metrics: dict[str, float] = {}
        for epoch in range(self.start_epoch, self.config.epochs):
            metrics = self.run_epoch(epoch)
            if self.should_stop(epoch, time.perf_counter() - started):
                break
        return metrics

    def run_epoch(self, epoch: int) -> dict[str, float]:
        """One epoch: train, evaluate when due, callbacks, checkpoints, report.

        The unit a Ray Tune trainable steps through; ``start_epoch`` moves past it.
        """
        self.out.mkdir(parents=True, exist_ok=True)
        for callback in self.callbacks:
            callback.on_epoch_start(self, epoch)
        metrics = self.train_epoch(epoch)
        if (epoch + 1) % self.config.eval_interval == 0 or epoch == self.config.epochs - 1:
            metrics.update(self.validate())
        fitness = metrics.get(m.MAP50, -1.0)
        if fitness > self.best_fitness:
            self.best_fitness, self.best_epoch = fitness, epoch
        for callback in self.callbacks:
            callback.on_epoch_end(self, epoch, metrics)
        self.history.append(metrics)
        self.save(self.out / "last.pt", epoch, metrics)
        if self.best_epoch == epoch:
            self.save(self.out / "best.pt", epoch, metrics, train_state=False)
        self.start_epoch = epoch + 1
        self.report(metrics)
        self.log(self.summary(epoch, metrics))
        return metrics

    def should_stop(self, epoch: int, elapsed_s: float) -> bool:
        """Early stop (``patience`` epochs without a better mAP) or the time budget."""
        if epoch - self.best_epoch >= self.config.patience:
            self.log(f"early stop: no better {m.MAP50} for {self.config.patience} epochs")
            return True
        budget = self.config.time_budget_s
        if budget is not None and elapsed_s >= budget:
            self.log(f"time budget of {budget:.0f} s reached after epoch {epoch + 1}")
            return True
        return False

    def _warmup(self, ni: int, warmup_iters: int, epoch: int) -> None:
        if ni >= warmup_iters:
            return
        factor = lr_factor(self.hyp, self.config.epochs)(epoch)
        for j, group in enumerate(self.optimizer.param_groups):
            start = self.hyp.warmup_bias_lr if j == 2 else 0.0
            group["lr"] = float(
                np.interp(ni, [0, warmup_iters], [start, group["initial_lr"] * factor])
            )
            group["momentum"] = float(
                np.interp(ni, [0, warmup_iters], [self.hyp.warmup_momentum, self.hyp.momentum])
            )

    def train_epoch(self, epoch: int) -> dict[str, float]:
        config, loader = self.config, self.train_loader
        set_loader_epoch(loader, epoch, config.seed)
        self.model.train()
        batches = len(loader)
        warmup = 0
        if self.hyp.warmup_epochs > 0:
            warmup = max(round(self.hyp.warmup_epochs * batches), self.hyp.warmup_min_iters)
        sums: dict[str, float] = {}
        images, start = 0, time.perf_counter()
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                   disable=not self.progress, unit="batch")  # fmt: skip
        for i, batch in enumerate(bar):
            ni = i + batches * epoch
            self._warmup(ni, warmup, epoch)
            items = self.train_step(epoch, i, batch)
            if (i + 1) % config.accumulate == 0 or i == batches - 1:
                self.optimizer_step()
                self._check_weights_finite(epoch, i)
            for key, term in items.items():
                sums[key] = sums.get(key, 0.0) + float(term)
            images += len(batch.image_ids)
            bar.set_postfix({k: f"{v / (i + 1):.3f}" for k, v in sums.items()})
        self.scheduler.step()
        elapsed = time.perf_counter() - start
        metrics = {m.EPOCH: float(epoch)}
        for key, value in sums.items():
            metrics[m.LOSS if key == "total" else f"loss_{key}"] = value / max(batches, 1)
        metrics[m.LR] = float(self.optimizer.param_groups[0]["lr"])
        metrics[m.EPOCH_TIME_S] = elapsed
        metrics[m.TRAIN_IMAGES_PER_S] = images / max(elapsed, 1e-9)
        return metrics

    def train_step(self, epoch: int, index: int, batch: Any) -> dict[str, torch.Tensor]:
        """Forward, loss (plus callbacks' terms) and backward of one batch."""
        images = batch.images.to(self.device, non_blocking=True)
        if self.device.type == "cuda":
            images = images.contiguous(memory_format=torch.channels_last)
        step = Step(epoch, index, batch, images, batch.targets.to(self.device))
        for callback in self.callbacks:
            callback.before_forward(self, step)
        with torch.autocast(device_type=self.device.type, enabled=self.amp):
            if self.taps:
                step.raw, features = self.model(images, taps=self.taps)
                step.features = dict(zip(self.taps, features))
            else:
                step.raw = self.model(images)
            weights: dict[str, float] = {}
            for callback in self.callbacks:
                weights.update(callback.detection_weights(self, step))
            loss, items = self.loss(step.raw, step.targets, weights=weights,
                                    input_size=(images.shape[-2], images.shape[-1]))  # fmt: skip
            step.loss_items = items
            for callback in self.callbacks:
                for name, term in callback.loss_terms(self, step).items():
                    loss = loss + term
                    items[name] = term.detach()
            items["total"] = loss.detach()
        if not torch.isfinite(loss):
            detail = ", ".join(f"{k}={float(v):.4g}" for k, v in items.items())
            raise NonFiniteLossError(
                f"non-finite loss at epoch {epoch + 1} batch {index} ({detail}); the last good "
                f"checkpoint is {self.out / 'last.pt'}"
            )
        self.scaler.scale(loss / self.config.accumulate).backward()
        for callback in self.callbacks:
            callback.after_backward(self)
        return items

    def _check_weights_finite(self, epoch: int, index: int) -> None:
        """A step can turn the weights NaN while its own loss was finite (a too-high lr):
        stop there, not an epoch of NaN later."""
        for name, parameter in self.model.named_parameters():
            if not bool(torch.isfinite(parameter).all()):
                raise NonFiniteLossError(
                    f"weights became non-finite ({name}) after the optimiser step at epoch "
                    f"{epoch + 1} batch {index} (lr {self.optimizer.param_groups[0]['lr']:.3g}); "
                    f"the last good checkpoint is {self.out / 'last.pt'}"
                )

    def optimizer_step(self) -> None:
        for optimizer in (self.optimizer, *self.extra_optimizers):
            self.scaler.step(optimizer)
        self.scaler.update()
        for optimizer in (self.optimizer, *self.extra_optimizers):
            optimizer.zero_grad(set_to_none=True)
        if self.ema is not None:
            self.ema.update(self.model)
        for callback in self.callbacks:
            callback.after_step(self)

    # ------------------------------------------------------------------ evaluation

    def validate(self) -> dict[str, float]:
        start = time.perf_counter()
        evaluation = evaluate(self.eval_model, self.val_loader, metric=self.config.metric,
                              device=self.device)  # fmt: skip
        self.last_evaluation = evaluation
        result = evaluation.result
        metrics = {m.MAP50: result.map50, m.PRECISION: result.precision, m.RECALL: result.recall,
                   "eval_images_per_s": evaluation.images_per_s,
                   m.EVAL_TIME_S: time.perf_counter() - start}  # fmt: skip
        if result.map50_95 is not None:
            metrics[m.MAP50_95] = result.map50_95
        return metrics

    def summary(self, epoch: int, metrics: dict[str, float]) -> str:
        losses = " ".join(
            f"{k.removeprefix('loss_')} {v:.3f}"
            for k, v in metrics.items()
            if k.startswith("loss_")
        )
        text = (
            f"epoch {epoch + 1}/{self.config.epochs}  loss {metrics.get(m.LOSS, 0):.3f} ({losses})"
        )
        if m.MAP50 in metrics:
            best = f"best {self.best_fitness:.4f} @ {self.best_epoch + 1}"
            text += f"  {m.MAP50} {metrics[m.MAP50]:.4f} ({best})"
        return text + f"  lr {metrics[m.LR]:.2e}  {metrics[m.EPOCH_TIME_S]:.1f}s"

    # ------------------------------------------------------------------ checkpoints

    def metadata(self, epoch: int, metrics: dict[str, float]) -> dict[str, Any]:
        return {
            "names": list(self.names),
            "img_size": self.config.img_size,
            "dataset": str(self.config.data),
            "model": str(self.config.model),
            "width": self.config.width,
            "epoch": epoch,
            "metrics": {k: float(v) for k, v in metrics.items()},
            "best_map50": self.best_fitness,
            "best_epoch": self.best_epoch,
        }

    def train_state(self, epoch: int) -> dict[str, Any]:
        return {
            "config": self.config.as_dict(),
            "epoch": epoch,
            "model": self.model.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "extra_optimizers": [o.state_dict() for o in self.extra_optimizers],
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "best_fitness": self.best_fitness,
            "best_epoch": self.best_epoch,
            "history": self.history,
            "callbacks": [cb.state_dict() for cb in self.callbacks],
            "torch_rng": torch.get_rng_state(),
        }

    def save(self, path: Path, epoch: int, metrics: dict[str, float], *,
             train_state: bool = True) -> None:  # fmt: skip
        masks = {k: v for cb in self.callbacks for k, v in cb.masks().items()}
        extra = {"train_state": self.train_state(epoch)} if train_state else None
        save_checkpoint(path, self.eval_model, masks=masks, metadata=self.metadata(epoch, metrics),
                        extra=extra)  # fmt: skip

    def load_train_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state["ema"] is not None:
            self.ema.load_state_dict(state["ema"])
        self.optimizer.load_state_dict(state["optimizer"])
        for optimizer, saved in zip(self.extra_optimizers, state["extra_optimizers"]):
            optimizer.load_state_dict(saved)
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        for callback, saved in zip(self.callbacks, state["callbacks"]):
            callback.load_state_dict(saved)
        self.best_fitness, self.best_epoch = state["best_fitness"], state["best_epoch"]
        self.history = list(state["history"])
        torch.set_rng_state(state["torch_rng"])
        self.start_epoch = state["epoch"] + 1

    def delivered_masks(self) -> dict[str, torch.Tensor]:
        """The masks of the model the run would deliver now (its callbacks' union)."""
        return {k: v for cb in self.callbacks for k, v in cb.delivered_masks().items()}

    def report(self, metrics: dict[str, float]) -> None:
        """Hand ``metrics`` to every callback's ``on_report`` (the engine does after each
        epoch; a method does for a result outside an epoch, e.g. CS's rewound ticket)."""
        for callback in self.callbacks:
            callback.on_report(self, metrics)

    @classmethod
    def start_or_resume(
        cls,
        config: TrainConfig,
        *,
        callbacks: Sequence[Callback] = (),
        on_start: Callable[[Trainer], None] | None = None,
        **kwargs: Any,
    ) -> Trainer:
        """Continue the run in ``config.out`` from its ``last.pt`` if there is one, else start
        it (then ``on_start(trainer)``, e.g. load rewound weights): the one life cycle every
        method uses, so that an interrupted run always resumes exactly."""
        last = Path(config.out) / "last.pt"
        if last.is_file():
            return cls.resume(last, callbacks=callbacks, **kwargs)
        trainer = cls(config, callbacks=callbacks, **kwargs)
        if on_start is not None:
            on_start(trainer)
        return trainer

    def run_to_end(self) -> None:
        """``fit`` unless the run already reached its last epoch."""
        if self.start_epoch < self.config.epochs:
            self.fit()

    @classmethod
    def resume(
        cls, path: str | Path, *, callbacks: Sequence[Callback] = (), **kwargs: Any
    ) -> Trainer:
        """Rebuild a trainer from ``last.pt`` and continue exactly where it stopped."""
        checkpoint = load_checkpoint(path)
        state = checkpoint.extra.get("train_state")
        if state is None:
            raise ValueError(f"{path}: holds no training state (resume from last.pt, not best.pt)")
        config = TrainConfig.from_dict(state["config"])
        trainer = cls(config, callbacks=callbacks, **kwargs)
        trainer.load_train_state(state)
        return trainer
