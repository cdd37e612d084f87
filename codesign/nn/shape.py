"""The supernet's fixed shape (no torch): stem, elastic stages, head. Shared by the torch model
(``codesign.nn.supernet``) and the accelerator-side layer list (``codesign.space.layers``)."""

# (width, stride, squeeze-excite, activation) per elastic stage
STAGES = ((24, 2, False, "relu"), (32, 2, False, "relu"), (64, 2, True, "hswish"), (96, 1, True, "hswish"))
STEM = 16
HEAD = 384


def make_divisible(v: float, d: int = 8) -> int:
    return max(d, int(v + d / 2) // d * d)
