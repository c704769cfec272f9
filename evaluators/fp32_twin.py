"""The plain fp32 PyTorch twin of a plan: the yardstick of benchmarks/bench_train.py, and the
real-valued teacher a binary network distils from (``boolnas-train network=fp32_twin``).

Same stem, widths, input resolution, blocks, strides and dilations as the plan's network, but
an ordinary ResNet-18-style network: ``nn.Conv2d`` with zero padding and real weights,
BatchNorm, ReLU, additive shortcuts (a strided 1x1 conv + BN projection where the shape
changes), global average pooling and the same FC head. What the BNN adds on top (multi-slice
binary maps, quantizers, logic joins, replicate padding, LAS, RPReLU, feature reuse) is what the
benchmark's ratio prices.

Built from the plan's layer specs (not from the genotype), so twin and BNN cannot drift apart.
Imports only torch and space/ (no hydra, optuna, ...), so it runs on a bare GPU machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn

from boolnas.space.plan import Plan


@dataclass(frozen=True)
class TwinBlock:
    """One basic block of the twin: two 3x3 convs ``c_in -> c_out -> c_out``."""

    c_in: int
    c_out: int
    stride: int
    dilation: int
    h_out: int


def twin_blocks(plan: Plan) -> list[TwinBlock]:
    """The basic blocks of ``plan`` in order: conv1 gives stride, dilation and width; the
    input width is the previous block's width (the stem's for the first block)."""
    stem = plan["stem.conv"]
    c_prev, blocks = stem.c_out, []
    for spec in plan:
        if spec.role == "conv1":
            blocks.append(TwinBlock(c_prev, spec.c_out, spec.stride, spec.dilation, spec.h_out))
            c_prev = spec.c_out
    return blocks


class BasicBlock(nn.Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, plus the (projected) input, -> ReLU."""

    def __init__(self, b: TwinBlock) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(b.c_in, b.c_out, 3, b.stride, padding=b.dilation, dilation=b.dilation, bias=False)
        self.bn1 = nn.BatchNorm2d(b.c_out)
        self.conv2 = nn.Conv2d(b.c_out, b.c_out, 3, 1, padding=b.dilation, dilation=b.dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(b.c_out)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if b.stride != 1 or b.c_in != b.c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(b.c_in, b.c_out, 1, b.stride, bias=False), nn.BatchNorm2d(b.c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Fp32Twin(nn.Sequential):
    """The twin's layers in order; ``plan`` is the plan it was built from (its task says which
    images it takes and how many classes it predicts)."""

    def __init__(self, plan: Plan, layers: list[nn.Module]) -> None:
        super().__init__(*layers)
        self.plan = plan


def fp32_twin(plan: Plan) -> Fp32Twin:
    """The fp32 ResNet-style twin of ``plan`` (train mode, PyTorch's default init)."""
    stem, fc = plan["stem.conv"], plan["head.fc"]
    layers: list[nn.Module] = [
        nn.Conv2d(stem.c_in, stem.c_out, stem.kernel, stem.stride, padding=stem.padding, bias=False),
        nn.BatchNorm2d(stem.c_out),
        nn.ReLU(inplace=True),
    ]
    if plan.task.stem == "imagenet":
        pool = plan["stem.pool"]
        layers.append(nn.MaxPool2d(pool.kernel, pool.stride, pool.padding))
    blocks = twin_blocks(plan)
    layers += [BasicBlock(b) for b in blocks]
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(blocks[-1].c_out, fc.c_out)]
    return Fp32Twin(plan, layers)
