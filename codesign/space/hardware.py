"""A hardware point: the values a parameter may take, the one builder of an Architecture from a
point of a template (used by the co-search space, sweeps and the cost predictor's features), and
the metrics of a network on it (latency, energy, EDP, area, on-chip memory, MACs, utilization)."""
from __future__ import annotations

import json
from functools import lru_cache

import numpy as np

from accelerators.arch import onchip_kib
from accelerators.errors import SpecError
from accelerators.spec import build_architecture


def parameter_values(spec, where: str) -> tuple:
    """A parameter's allowed values: ``{min, max, step}`` or ``{choices: [...]}`` or a list."""
    if isinstance(spec, list):
        vals = spec
    elif isinstance(spec, dict) and "choices" in spec:
        vals = spec["choices"]
    elif isinstance(spec, dict) and {"min", "max"} <= set(spec):
        lo, hi, step = spec["min"], spec["max"], spec.get("step", 1)
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (lo, hi, step)) or step <= 0 or lo > hi:
            raise SpecError(where, f"needs numbers min <= max and step > 0, got {spec}")
        import math
        from accelerators.limits import check_int
        if not all(math.isfinite(v) for v in (lo, hi, step)):
            raise SpecError(where, f"needs finite numbers, got {spec}")
        check_int(int((hi - lo) // step) + 1, f"{where} (values of min..max by step)", limit="axis")
        vals = list(np.arange(lo, hi + step / 2, step))
        vals = [int(v) if float(v).is_integer() else float(v) for v in vals]
    else:
        raise SpecError(where, "must be {min, max, step}, {choices: [...]} or a list")
    if not isinstance(vals, list) or not vals:
        raise SpecError(where, "has no values")
    from accelerators.limits import check_int
    check_int(len(vals), f"{where} (values)", limit="axis")
    return tuple(vals)


@lru_cache(maxsize=4096)
def point_architecture(template_text: str, hw_json: str):
    """The template (YAML text) with a hardware point's overrides (JSON text, so that it caches):
    ``pe_x`` / ``pe_y``, ``bits`` b (weights and inputs b bits, partial sums max(16, 2b)),
    ``sizes_kib``, ``dram_type``, ``dram_bw``, ``dataflow``; a parameter the point does not give
    keeps the template's value."""
    from accelerators.limits import load_yaml_text
    hw, spec = json.loads(hw_json), load_yaml_text(template_text)
    if isinstance(spec, dict) and isinstance(spec.get("architecture"), dict) and "levels" in spec["architecture"]:
        spec = spec["architecture"]
    pa = (spec.get("pe_array") or {}) if isinstance(spec, dict) else {}
    pe = (int(hw.get("pe_x", pa.get("x", 1))), int(hw.get("pe_y", pa.get("y", 1)))) if {"pe_x", "pe_y"} & set(hw) else None
    b = hw.get("bits")
    bits = None if b is None else {"weights": int(b), "inputs": int(b), "outputs": max(16, 2 * int(b))}
    return build_architecture(spec, pe_array=pe, bits=bits, sizes_kib=hw.get("sizes_kib"),
                              dram_type=hw.get("dram_type"), dram_bandwidth=hw.get("dram_bw"),
                              dataflow=hw.get("dataflow"))


def latency_ms(cycles, clock_ghz: float) -> float:
    return 1e3 * (cycles / (clock_ghz * 1e9))


def hardware_metrics(arch, latency: float, energy_uj: float, macs, utilization) -> dict:
    """The metrics of a network on ``arch`` (units in the names) from its latency (ms), energy,
    MACs and utilization, mapped or predicted: area and on-chip memory come from ``arch``."""
    m = {"latency_ms": latency, "energy_uj": energy_uj, "area_mm2": arch.area_um2() / 1e6,
         "onchip_kib": onchip_kib(arch), "macs": int(macs), "utilization": float(utilization)}
    m["edp_uj_ms"] = m["energy_uj"] * m["latency_ms"]
    return m


def mapped_metrics(arch, totals: dict) -> dict:
    """``hardware_metrics`` from the totals of ``accelerators.network`` (every layer mapped)."""
    return hardware_metrics(arch, latency_ms(totals["cycles"], arch.clock_ghz), totals["energy_pj"] / 1e6,
                            totals["macs"], totals["utilization"])
