"""Generated class templates plus noise: learnable in a few steps, for tests and smoke runs."""

from __future__ import annotations

import torch

from boolnas.evaluators.data.config import DataConfig
from boolnas.evaluators.data.tensors import Dataset
from boolnas.evaluators.memory import images_bytes, require


def synthetic(cfg: DataConfig) -> Dataset:
    """``cfg.num_train`` + ``cfg.val_size`` + ``cfg.num_test`` images of ``cfg.num_classes`` classes,
    already normalized (templates ~ N(0, 1), noise 0.8), seeded by ``cfg.seed``."""
    assert cfg.input_size is not None and cfg.channels is not None  # DataConfig refuses None for synthetic
    n = cfg.num_train + cfg.val_size + cfg.num_test
    require(images_bytes(n, cfg.channels, cfg.input_size),
            f"data=synthetic at {cfg.channels}x{cfg.input_size}x{cfg.input_size} ({n:,} images)",
            "lower data.input_size or data.num_train / data.num_test / data.val_size")
    gen = torch.Generator().manual_seed(cfg.seed)
    shape = (cfg.channels, cfg.input_size, cfg.input_size)
    templates = torch.randn(cfg.num_classes, *shape, generator=gen)

    def draw(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, cfg.num_classes, (n,), generator=gen)
        return templates[y] + 0.8 * torch.randn(n, *shape, generator=gen), y

    train_x, train_y = draw(cfg.num_train + cfg.val_size)
    test_x, test_y = draw(cfg.num_test)
    n_val = cfg.val_size
    return Dataset("synthetic", train_x[n_val:], train_y[n_val:], train_x[:n_val], train_y[:n_val],
                   test_x, test_y, cfg.num_classes)
