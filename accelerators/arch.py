"""Architecture specs: an ordered storage hierarchy (outermost first) above an array of MACs.

Counts in the model are in words of the data space; a level's capacity and vector width are in
bits so that data spaces of different bit-widths share a level correctly. All figures a level
needs for cost (energy per action, leakage, area) are resolved when the spec is built: from the
built-in tables (``accelerators.energy``), from explicit values, or from a Timeloop ERT/ART.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from .errors import SpecError
from .limits import check_int


@dataclass(frozen=True)
class ActionEnergy:
    """Energy per *vector* access (one block of ``width_bits``) and leakage per instance-cycle."""
    read_pj: float = 0.0
    write_pj: float = 0.0
    update_pj: float = 0.0
    leak_pj: float = 0.0


@dataclass(frozen=True)
class Level:
    name: str
    kind: str = "sram"                 # dram | sram | regfile | dummy
    size_words: int | None = None      # capacity in words of ``word_bits``; None = unbounded
    word_bits: int = 16                # shared datawidth
    width_bits: int | None = None      # vector (block) width; default one word
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    read_bw: float | None = None       # words per cycle per instance; None = unlimited
    write_bw: float | None = None
    keeps: tuple[str, ...] | None = None   # data spaces it may keep; None = any
    energy: ActionEnergy = field(default_factory=ActionEnergy)
    area_um2: float = 0.0              # per instance
    multiple_buffering: float = 1.0
    word_bits_per_role: tuple[tuple[str, int], ...] = ()   # optional (role, bits) overrides

    def bits_of(self, role: str) -> int:
        for name, b in self.word_bits_per_role:
            if name == role:
                return b
        return self.word_bits

    def block_words(self, bits: int) -> int:
        """Words of ``bits`` bits per vector access."""
        width = self.width_bits or self.word_bits
        return max(1, width // bits)

    @property
    def capacity_bits(self) -> float | None:
        if self.size_words is None:
            return None
        return self.size_words * self.word_bits / self.multiple_buffering

    @property
    def is_dummy(self) -> bool:
        return self.kind == "dummy"


@dataclass(frozen=True)
class Compute:
    name: str = "MAC"
    instances: int = 1
    mesh_x: int = 1
    mesh_y: int = 1
    energy_pj: float = 0.0       # per MAC
    leak_pj: float = 0.0         # per instance-cycle (Timeloop does not charge it; kept for reports)
    area_um2: float = 0.0        # per instance
    multiplier_bits: int = 16
    adder_bits: int = 16


@dataclass(frozen=True)
class Architecture:
    name: str
    levels: tuple[Level, ...]          # outermost (DRAM) first
    compute: Compute
    clock_ghz: float = 1.0
    technology_nm: float = 45.0
    bits: dict = field(default_factory=lambda: {"weights": 16, "inputs": 16, "outputs": 16},
                       hash=False)
    dataflow: str = "free"
    source: str | None = field(default=None, compare=False, hash=False)   # the file it was read from

    def __post_init__(self):
        if not self.levels:
            raise SpecError("architecture", "needs at least one storage level")
        names = [lv.name for lv in self.levels] + [self.compute.name]
        if len(set(names)) != len(names):
            raise SpecError("architecture", f"level names must be unique: {names}")
        if isinstance(self.compute.instances, int):
            check_int(self.compute.instances, f"architecture.{self.compute.name}.instances", limit="macs")
        inst = [lv.instances for lv in self.levels] + [self.compute.instances]
        xs = [lv.mesh_x for lv in self.levels] + [self.compute.mesh_x]
        ys = [lv.mesh_y for lv in self.levels] + [self.compute.mesh_y]
        for i, lv in enumerate(self.levels):
            for attr in ("instances", "mesh_x", "mesh_y"):
                v = getattr(lv, attr)
                if not isinstance(v, int) or v < 1:
                    raise SpecError(f"architecture.{lv.name}.{attr}", f"must be a positive integer, got {v!r}")
            if lv.size_words is not None and lv.size_words <= 0:
                raise SpecError(f"architecture.{lv.name}.size", f"must be positive, got {lv.size_words}")
            if lv.word_bits <= 0:
                raise SpecError(f"architecture.{lv.name}.datawidth", f"must be positive, got {lv.word_bits}")
            if lv.mesh_x * lv.mesh_y != lv.instances:
                raise SpecError(f"architecture.{lv.name}.meshX", f"meshX*meshY = {lv.mesh_x}x{lv.mesh_y} "
                                f"does not equal the {lv.instances} instances")
        for i in range(len(inst) - 1):
            if inst[i + 1] % inst[i] or xs[i + 1] % xs[i] or ys[i + 1] % ys[i]:
                raise SpecError(f"architecture.{names[i + 1]}.instances",
                                f"{inst[i + 1]} ({xs[i + 1]}x{ys[i + 1]}) is not a multiple of the "
                                f"{inst[i]} ({xs[i]}x{ys[i]}) instances of {names[i]} above it")

    # ------------------------------------------------------------------ derived figures
    def fanout(self, i: int) -> tuple[int, int]:
        """(X, Y) fan-out from level ``i`` to the next inner level (or the MACs)."""
        lv = self.levels[i]
        nxt = self.levels[i + 1] if i + 1 < len(self.levels) else self.compute
        return nxt.mesh_x // lv.mesh_x, nxt.mesh_y // lv.mesh_y

    @property
    def num_pes(self) -> int:
        return self.compute.instances

    def level_index(self, name: str) -> int:
        for i, lv in enumerate(self.levels):
            if lv.name == name:
                return i
        raise KeyError(name)

    def area_um2(self) -> float:
        return (sum(lv.area_um2 * lv.instances for lv in self.levels)
                + self.compute.area_um2 * self.compute.instances)

    def with_levels(self, **changes_by_level) -> "Architecture":
        """Copy with per-level attribute changes: ``arch.with_levels(GlobalBuffer={"size_words": 4096})``."""
        levels = tuple(replace(lv, **changes_by_level.get(lv.name, {})) for lv in self.levels)
        return replace(self, levels=levels)

    def bits_summary(self) -> str:
        """The word widths the model uses, in words: the per-data-space bits of our own specs
        (``bits weights 8, inputs 8, outputs 16``), or for a Timeloop architecture (one datawidth
        per level, no per-data-space widths) its datawidth(s)."""
        if any(lv.word_bits_per_role for lv in self.levels):
            return "bits " + ", ".join(f"{k} {v}" for k, v in self.bits.items())
        real = [lv for lv in self.levels if lv.kind != "dummy"] or list(self.levels)
        widths = {lv.word_bits for lv in real}
        if len(widths) == 1:
            return f"datawidth {widths.pop()} bits"
        return "datawidth " + ", ".join(f"{lv.name} {lv.word_bits}" for lv in real) + " bits"

    def summary(self) -> str:
        rows = [f"{self.name}: {self.compute.instances} MACs ({self.compute.mesh_x}x{self.compute.mesh_y}), "
                f"{self.clock_ghz} GHz, {self.technology_nm} nm, {self.bits_summary()}"]
        for lv in self.levels:
            size = "inf" if lv.size_words is None else f"{lv.size_words} words"
            rows.append(f"  {lv.name:<24} x{lv.instances:<5} {lv.kind:<8} {size} ({lv.word_bits}-bit words)")
        return "\n".join(rows)


def split_xy(arch: Architecture) -> tuple[Architecture, list]:
    """The architecture as Timeloop can map it: below every level that fans out in both X and Y a
    dummy level (as in Timeloop's own Eyeriss example) takes the Y fan-out, so that one dimension
    may be split across X and Y (Timeloop allows one spatial factor per dimension and level).
    Returns (architecture, indices of the split levels). The model evaluates a mapping that splits
    a dimension across X and Y of one level on this architecture (``model.evaluate_batch``), so
    such a mapping's numbers are the ones Timeloop gives for its only way to write it."""
    levels, split = [], []
    names = {lv.name for lv in arch.levels} | {arch.compute.name}
    for i, lv in enumerate(arch.levels):
        levels.append(lv)
        fx, fy = arch.fanout(i)
        if fx > 1 and fy > 1:
            split.append(i)
            name = "DummyBuffer"
            while name in names:
                name = f"DummyBuffer_{lv.name}" if name == "DummyBuffer" else name + "_"
            names.add(name)
            levels.append(Level(name=name, kind="dummy", size_words=None, word_bits=lv.word_bits,
                                instances=lv.instances * fx, mesh_x=lv.mesh_x * fx, mesh_y=lv.mesh_y))
    return replace(arch, levels=tuple(levels)), split


def onchip_kib(arch: Architecture) -> float:
    """On-chip memory in KiB: every level except DRAM, all instances."""
    return sum(lv.size_words * lv.word_bits * lv.instances for lv in arch.levels
               if lv.kind != "dram" and lv.size_words) / 8 / 1024
