"""Built-in energy and area tables: MACs, DRAM, SRAM, register files, technology scaling.

The figures live in ``specs/energy/default.yaml``, each with its source and the fit error against
its calibration points (Horowitz ISSCC 2014, CACTI/Aladdin through Timeloop+Accelergy reference
outputs, Stillmaker & Baas 2017). Energies are in pJ per *vector* access of ``width_bits`` (the
unit Timeloop charges), leakage in pJ per 1 ns cycle (scale by 1/clock_ghz for other clocks),
areas in um^2 per instance. All functions are pure; ``tables`` defaults to the built-in file.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import yaml

from .arch import ActionEnergy
from .errors import SpecError
from .resources import SPECS_DIR

DEFAULT_TABLES_PATH = SPECS_DIR / "energy" / "default.yaml"
STORAGE_KINDS = ("dram", "sram", "regfile", "dummy")


def load_tables(path: str | None = None) -> dict:
    """The tables at ``path`` (default: the built-in file), parsed once and cached; read-only."""
    return _load_cached(str(Path(path).resolve() if path else DEFAULT_TABLES_PATH))


@lru_cache(maxsize=8)
def _load_cached(path: str) -> dict:
    from .limits import load_yaml_file
    return load_yaml_file(path)


# ----------------------------------------------------------------------------- technology

def _node_factor(quantity: str, node_nm: float, tables: dict) -> float:
    """Energy or area at ``node_nm`` relative to 45 nm; log-log interpolation between nodes."""
    tech = tables["technology"]
    pairs = sorted(zip(tech["nodes_nm"], tech[quantity]))
    lo, hi = pairs[0][0], pairs[-1][0]
    if isinstance(node_nm, bool) or not isinstance(node_nm, (int, float)) or not lo <= node_nm <= hi:
        raise SpecError("technology_nm", f"must be a node between {lo} and {hi} nm, got {node_nm!r}")
    for (n0, v0), (n1, v1) in zip(pairs, pairs[1:]):
        if n0 <= node_nm <= n1:
            t = math.log(node_nm / n0) / math.log(n1 / n0)
            return math.exp((1 - t) * math.log(v0) + t * math.log(v1))
    return pairs[-1][1]


def scale_energy(value_pj: float, from_nm: float, to_nm: float, tables=None) -> float:
    """Dynamic (and leakage) energy of a circuit moved from node ``from_nm`` to ``to_nm``."""
    t = tables or load_tables()
    return value_pj * _node_factor("energy", to_nm, t) / _node_factor("energy", from_nm, t)


def scale_area(value_um2: float, from_nm: float, to_nm: float, tables=None) -> float:
    t = tables or load_tables()
    return value_um2 * _node_factor("area", to_nm, t) / _node_factor("area", from_nm, t)


# ----------------------------------------------------------------------------- MAC

def _check_bits(value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SpecError(field, f"must be a positive integer number of bits, got {value!r}")
    return value


def _power_law(bits: int, ref_bits, ref_values) -> float:
    """Through both reference points: y = y0 * (bits/b0)^k."""
    (b0, b1), (y0, y1) = ref_bits, ref_values
    k = math.log(y1 / y0) / math.log(b1 / b0)
    return y0 * (bits / b0) ** k


def _linear(bits: int, ref_bits, ref_values) -> float:
    (b0, b1), (y0, y1) = ref_bits, ref_values
    return y0 + (y1 - y0) * (bits - b0) / (b1 - b0)


def _mac_figure(quantity: str, multiplier_bits: int, adder_bits: int, tables: dict) -> float:
    mac = tables["mac"]
    mult, add = mac["multiplier"], mac["adder"]
    return (_power_law(_check_bits(multiplier_bits, "multiplier_bits"), mult["bits"], mult[quantity])
            + _linear(_check_bits(adder_bits, "adder_bits"), add["bits"], add[quantity]))


def mac_energy_pj(multiplier_bits: int, adder_bits: int, technology_nm: float, tables=None) -> float:
    """One integer multiply-accumulate: multiplier ~quadratic in width, adder linear (Horowitz)."""
    t = tables or load_tables()
    e45 = _mac_figure("energy_pj", multiplier_bits, adder_bits, t)
    return scale_energy(e45, t["mac"]["node_nm"], technology_nm, t)


def mac_area_um2(multiplier_bits: int, adder_bits: int, technology_nm: float, tables=None) -> float:
    t = tables or load_tables()
    a45 = _mac_figure("area_um2", multiplier_bits, adder_bits, t)
    return scale_area(a45, t["mac"]["node_nm"], technology_nm, t)


# ----------------------------------------------------------------------------- storage

def dram_pj_per_bit(dram_type: str, tables=None) -> float:
    table = (tables or load_tables())["dram"]["pj_per_bit"]
    for name, value in table.items():
        if isinstance(dram_type, str) and name.lower() == dram_type.lower():
            return float(value)
    raise SpecError("dram_type", f"unknown DRAM type {dram_type!r} (one of {', '.join(table)})")


def _check_kind(kind: str) -> str:
    if kind not in STORAGE_KINDS:
        raise SpecError("kind", f"unknown storage kind {kind!r} (one of {', '.join(STORAGE_KINDS)})")
    return kind


def _capacity_bits(kind: str, size_words, word_bits: int) -> int:
    if size_words is None:
        raise SpecError("size_words", f"a {kind} level needs a capacity (size_kib, size_bytes or size_words)")
    return _check_bits(size_words, "size_words") * _check_bits(word_bits, "word_bits")


def storage_energy(kind: str, size_words: int | None, word_bits: int, width_bits: int,
                   technology_nm: float, dram_type: str = "LPDDR4", tables=None) -> ActionEnergy:
    """Energy per vector access of ``width_bits`` (read, write, update) and leakage per 1 ns cycle."""
    t = tables or load_tables()
    _check_kind(kind)
    if kind == "dummy":
        return ActionEnergy()
    width = _check_bits(width_bits or word_bits, "width_bits")
    if kind == "dram":
        e = width * dram_pj_per_bit(dram_type, t)
        return ActionEnergy(read_pj=e, write_pj=e, update_pj=e, leak_pj=0.0)
    bits = _capacity_bits(kind, size_words, word_bits)
    if kind == "sram":
        s = t["sram"]
        root = math.sqrt(bits / 8)
        read = width * (s["read"]["fixed"] + s["read"]["per_sqrt_byte"] * root)
        write = width * (s["write"]["fixed"] + s["write"]["per_sqrt_byte"] * root)
        leak = s["leak"]["fixed"] + s["leak"]["per_bit"] * bits
    else:  # regfile
        s = t["regfile"]
        entries = max(1.0, bits / width)
        read = write = width * (s["access"]["fixed"] + s["access"]["per_log2_entry"] * math.log2(entries))
        leak = s["leak"]["per_bit"] * bits
    f = scale_energy(1.0, s["node_nm"], technology_nm, t)
    return ActionEnergy(read_pj=read * f, write_pj=write * f, update_pj=write * f, leak_pj=leak * f)


def storage_area_um2(kind: str, size_words: int | None, word_bits: int, width_bits: int,
                     technology_nm: float, tables=None) -> float:
    """Area of one instance; DRAM (off chip) and dummy levels have none."""
    t = tables or load_tables()
    if _check_kind(kind) in ("dram", "dummy"):
        return 0.0
    bits = _capacity_bits(kind, size_words, word_bits)
    s = t[kind]
    area = s["area"].get("fixed", 0.0) + s["area"]["per_bit"] * bits
    return scale_area(area, s["node_nm"], technology_nm, t)
