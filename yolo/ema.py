"""Exponential moving average of weights, with the seed's warm-up of the decay."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn


class ModelEMA:
    """``ema = d * ema + (1 - d) * weights`` with ``d = decay * (1 - exp(-updates / 2000))``.

    The ramp keeps early EMA weights close to the model's (a plain 0.9999 would average in
    the random initialisation for thousands of steps). Buffers (BN statistics) are copied.
    """

    def __init__(self, model: nn.Module, decay: float = 0.9999, updates: int = 0) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.updates = updates

    def current_decay(self) -> float:
        return self.decay * (1 - math.exp(-self.updates / 2000))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        d = self.current_decay()
        source = model.state_dict()
        seen: set[int] = set()
        for name, value in self.model.state_dict().items():
            if value.data_ptr() in seen:  # a tensor two blocks share (share_index): once
                continue
            seen.add(value.data_ptr())
            if value.dtype.is_floating_point:
                value.mul_(d).add_(source[name].detach(), alpha=1 - d)
            else:
                value.copy_(source[name])

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "updates": self.updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.updates = int(state["updates"])
        self.decay = float(state["decay"])
