"""The seven literature networks of docs/bnn-background.md (section 3) as genotypes.

A registry of named points of the search space (timm-style): every search can start from
them, and the energy model is checked against the paper on them.
"""

from __future__ import annotations

from collections.abc import Callable

from boolnas.space.genotype import Genotype

PresetFactory = Callable[[], Genotype]
_REGISTRY: dict[str, PresetFactory] = {}


def register(fn: PresetFactory) -> PresetFactory:
    _REGISTRY[fn.__name__] = fn
    return fn


@register
def xnornet18() -> Genotype:
    """XNOR-Net ResNet-18: one 32-bit additive shortcut per block, 32-bit feature maps,
    a real strided 1x1 conv + BN as downsample (ImageNet top-1 51.2 %)."""
    return Genotype(shortcut="fp32", placement="per_block", slices=1, downsample="strided")


@register
def bireal18() -> Genotype:
    """Bi-Real Net 18: a 32-bit shortcut around every binary conv, AvgPool -> real 1x1 conv
    downsample, approx-sign gradient (56.4 %)."""
    return Genotype(shortcut="fp32", placement="per_conv", slices=1, downsample="fp32_avgpool",
                    sign_grad="approx")


@register
def reactnet18() -> Genotype:
    """ReActNet on the Bi-Real-18 skeleton: RSign thresholds and RPReLU in every stage (65.9 %)."""
    return Genotype(shortcut="fp32", placement="per_conv", slices=1, downsample="fp32_avgpool",
                    stem="rsign", extras="rprelu", sign_grad="approx")


@register
def basenet18_k1() -> Genotype:
    """BoolNet's BaseNet, k = 1: logic XNOR/OR shortcuts, 1-bit feature maps, binary 1x1 conv
    -> MaxPool downsample (48.9 %)."""
    return Genotype(shortcut="binary", slices=1, downsample="binary_maxpool")


@register
def basenet18_k4() -> Genotype:
    """BaseNet with 4-slice feature maps (55.1 %)."""
    return Genotype(shortcut="binary", slices=4, downsample="binary_maxpool")


@register
def boolnet18_k4() -> Genotype:
    """BoolNet: BaseNet k = 4 plus feature reuse and local adaptive shifting in the stem (57.6 %)."""
    return Genotype(shortcut="binary", slices=4, downsample="binary_maxpool", feature_reuse=True,
                    stem="las")


@register
def boolnet18_k4_star() -> Genotype:
    """BoolNet*: BoolNet with a dilated last stage (stride 1, dilation 2; 59.6 %)."""
    return Genotype(shortcut="binary", slices=4, downsample="binary_maxpool", feature_reuse=True,
                    stem="las", dilated_last=True)


PRESETS: tuple[str, ...] = tuple(_REGISTRY)


def get_preset(name: str) -> Genotype:
    """The genotype of preset ``name``; unknown names get a ValueError listing the presets."""
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; available presets: {list(PRESETS)}") from None


def preset_of(genotype: Genotype) -> str | None:
    """The preset name whose architecture equals ``genotype`` (by key), if any."""
    key = genotype.key()
    for name in PRESETS:
        if get_preset(name).key() == key:
            return name
    return None
