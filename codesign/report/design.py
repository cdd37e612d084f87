"""One design of a search run as files other tools read:

* ``arch.yaml`` -- the accelerator as Timeloop v0.4 YAML (architecture + ERT + ART);
* ``layers/NN_<name>.yaml`` -- per layer of the subnet its Timeloop ``problem`` and ``mapping``
  (each layer mapped again with the run's mapper budget: deterministic, so the totals equal the
  stored metrics, which is checked) and a ``codesign`` block with the per-data-space bit-widths
  and the expected energy / cycles;
* ``design.json`` -- genome, stored and recomputed metrics, totals, one entry per layer;
* ``subnet.pt`` / ``subnet.onnx`` -- the stand-alone subnet extracted from the supernet weights.

Timeloop keeps one word width per storage level; our designs keep weights and inputs at
``bits`` and partial sums at ``max(16, 2*bits)`` bits. ``load_layer`` reads the exported files
back (through ``accelerators.timeloop.load_inputs``) and applies those widths, so that a layer
evaluates to exactly the energy and cycles of the run.

torch is imported only by the PyTorch part.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from accelerators.errors import SpecError

from codesign.jsonio import plain_value
from codesign.rundir.search import load_run


def torch_available() -> bool:
    """Whether PyTorch can be imported (``codesign export --design`` writes the Timeloop files
    without it and skips the subnet)."""
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def find_row(res, design_id) -> dict:
    try:
        i = int(design_id)
    except (TypeError, ValueError):
        raise SpecError("--design", f"must be an integer id, got {design_id!r}") from None
    for r in res.rows:
        if r["id"] == i:
            if r.get("status") == "failed" or r["metrics"].get("latency_ms") is None:
                raise SpecError("--design", f"design {i} failed in the run ({r['metrics'].get('error') or 'no metrics'})")
            return r
    ids = [r["id"] for r in res.rows]
    span = f"ids {min(ids)}..{max(ids)}" if ids else "the run is empty"
    raise SpecError("--design", f"no design with id {i} in this run ({span})")


def best_edp_id(res) -> int | None:
    """The front design with the lowest EDP (feasible first)."""
    front = [r for r in res.front() if r["metrics"].get("edp_uj_ms") is not None]
    if not front:
        return None
    return min(front, key=lambda r: (r["metrics"]["violation"] > 0, r["metrics"]["edp_uj_ms"]))["id"]


def design_network(space, evaluator_cfg: dict, row: dict, cache=None):
    """``(architecture, layers, NetworkResult)`` of a stored design (``row``): every layer of its
    subnet mapped on its accelerator as the run mapped it (the run's mapper budget, the
    architecture's dataflow, seed 0; deterministic). The NetworkResult's rows are the per-layer
    breakdown: cycles, energy_pj, mac_energy_pj and ``energy_<level>_pj`` per storage level."""
    from codesign.report.breakdown import map_network
    return map_network(space, row["genome"], evaluator_cfg["mapper_budget"], cache)


def map_design(space, genome: dict, mapper_budget: int, cache=None) -> dict:
    """Every layer of ``genome``'s subnet mapped on its hardware point exactly as the evaluator maps
    it (the space's template, ``mapper_budget``, seed 0, the architecture's dataflow; ``cache`` a
    ``MappingCache`` shared between calls, default a fresh one). Returns ``arch``, ``layers``,
    ``network`` (a NetworkResult: one row per layer), ``mappings`` (one per layer) and
    ``metrics`` (latency, energy, EDP, area, ... as the evaluator's mapped cost gives them)."""
    from accelerators.network import MappingCache

    from codesign.search.problem import Evaluator
    net, hw = genome["net"], genome["hw"]
    cache = MappingCache() if cache is None else cache
    budget = int(mapper_budget)
    metrics = Evaluator(space, None, mapper_budget=budget, cache=cache).hardware(hw, net)
    arch, layers, nr = design_network(space, {"mapper_budget": budget}, {"genome": genome}, cache)  # all cache hits
    # the mappings themselves: the same cache entries again (evaluate_network's key: 'dataflow', edp, seed 0)
    mappings = [cache.get_or_map(l.work, arch, "dataflow", objective="edp", budget=budget, seed=0)[0].mapping
                for l in layers]
    return {"arch": arch, "layers": layers, "network": nr, "mappings": mappings, "metrics": metrics}


def layer_breakdown(network, clock_ghz: float):
    """Per-layer latency and energy of a mapped network (``map_design(...)["network"]``) as a
    DataFrame: ``layer``, ``shape``, ``macs``, ``cycles``, ``latency_ms``, ``energy_uj``,
    ``edp_uj_ms``, ``utilization``, ``mac_energy_uj`` and ``energy_<level>_uj`` per storage level
    (the design's totals are the column sums)."""
    import pandas as pd

    from codesign.space.hardware import latency_ms
    recs = []
    for r in network.rows:
        lat = latency_ms(r["cycles"], clock_ghz)
        rec = {"layer": r["layer"], "shape": r["shape"], "macs": r["macs"], "cycles": r["cycles"],
               "latency_ms": lat, "energy_uj": r["energy_pj"] / 1e6, "edp_uj_ms": r["energy_pj"] / 1e6 * lat,
               "utilization": r["utilization"], "mac_energy_uj": r["mac_energy_pj"] / 1e6}
        rec.update({k[:-3] + "_uj": v / 1e6 for k, v in r.items()
                    if k.startswith("energy_") and k.endswith("_pj") and k != "energy_pj"})
        recs.append(rec)
    return pd.DataFrame(recs)


def evaluate_design(directory, design_id, cache=None) -> dict:
    """Map every layer of a stored design again (the run's space, mapper budget and seed, a fresh
    mapping cache unless ``cache`` holds the run's mappings) and compare with the stored metrics. Returns a dict with ``cfg``, ``row``,
    ``space``, ``arch``, ``layers``, ``network`` (NetworkResult), ``metrics`` (recomputed) and
    ``mismatch`` ({metric: (stored, recomputed)} beyond 1e-9 relative)."""
    from codesign.space.joint import space_from_dict
    cfg, res = load_run(directory)
    row = find_row(res, design_id)
    ev_cfg = cfg["evaluator"]
    space = space_from_dict(ev_cfg["space"], ev_cfg.get("space_name", "space"))
    m = map_design(space, row["genome"], int(ev_cfg["mapper_budget"]), cache=cache)
    metrics, arch, layers, nr, mappings = m["metrics"], m["arch"], m["layers"], m["network"], m["mappings"]
    stored = row["metrics"]
    mismatch = {}
    for k, v in metrics.items():
        s = stored.get(k)
        if s is None or abs(v - s) > 1e-9 * max(abs(v), abs(s), 1e-30):
            mismatch[k] = (s, v)
    metrics = {"top1_pct": stored.get("top1_pct"), **metrics, "violation": stored.get("violation")}
    return {"cfg": cfg, "result": res, "row": row, "space": space, "arch": arch, "layers": layers, "network": nr,
            "mappings": mappings, "metrics": metrics, "mismatch": mismatch}


def layer_bits(arch, work) -> dict | None:
    """{data space: bits} that every level agrees on (None if the levels disagree)."""
    from accelerators.mapping import level_bits
    out = {}
    for ds in work.dataspaces:
        vals = {level_bits(lv, work, ds) for lv in arch.levels if not lv.is_dummy}
        if len(vals) != 1:
            return None
        out[ds.name] = int(vals.pop())
    return out


def _explicit_keeps(entries: list, arch, work) -> list:
    """The mapping with a bypass directive for every storage level (the exported architecture
    does not carry the template's per-level ``keeps``)."""
    entries = [dict(e) for e in entries]
    have = {e["target"] for e in entries if e.get("type") in ("bypass", "datatype", "dataspace")}
    names = [ds.name for ds in work.dataspaces]
    for lv in arch.levels:
        if lv.is_dummy or lv.name in have:
            continue
        keep = [n for n in names if lv.keeps is None or n in lv.keeps]
        entries.append({"target": lv.name, "type": "bypass", "keep": keep, "bypass": [n for n in names if n not in keep]})
    order = {lv.name: i for i, lv in enumerate(arch.levels)}
    kind = {"temporal": 0, "spatial": 1}
    return sorted(entries, key=lambda e: (order.get(e["target"], 99), kind.get(e.get("type"), 2)))


def timeloop_architecture(arch):
    """``accelerators.timeloop.split_xy``: a dummy level takes the Y fan-out of 2-D levels."""
    from accelerators.timeloop import split_xy
    return split_xy(arch)


def timeloop_mapping(mapping, split: list):
    from accelerators.timeloop import split_mapping
    return split_mapping(mapping, split)


def arch_document(arch) -> dict:
    """Timeloop v0.4 architecture + ERT + ART of one of our architectures (already passed
    through ``timeloop_architecture``)."""
    from accelerators.timeloop import architecture_to_timeloop, ert_to_timeloop
    a = architecture_to_timeloop(arch)
    art = [{"name": f"{arch.name}.{lv.name}[1..{lv.instances}]", "area": float(lv.area_um2)} for lv in arch.levels]
    art.append({"name": f"{arch.name}.{arch.compute.name}[1..{arch.compute.instances}]",
                "area": float(arch.compute.area_um2)})
    return {"architecture": a, "ERT": ert_to_timeloop(arch), "ART": {"version": "0.4", "tables": art}}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def load_layer(arch_file, layer_file):
    """(architecture, workload, mapping) of an exported layer: ``load_inputs`` on the two files,
    then the per-data-space bit-widths of the file's ``codesign`` block."""
    from accelerators.timeloop import load_inputs, load_yaml
    arch, work, mapping = load_inputs([str(arch_file), str(layer_file)])
    ext = load_yaml(layer_file).get("codesign") or {}
    if ext.get("bits"):
        work = replace(work, bits={str(k): int(v) for k, v in ext["bits"].items()})
    return arch, work, mapping


def export_design(directory, design_id, outdir, weights=None, onnx: bool = True, log=print) -> dict:
    """Write the design's Timeloop files, ``design.json`` and (with supernet weights and PyTorch
    installed) the PyTorch subnet into ``outdir``. Returns ``design.json``'s content.

    Without PyTorch the Timeloop files and ``design.json`` are still written and ``log`` gets one
    line saying what was skipped (``subnet.pt`` / ``subnet.onnx``; the ``export`` extra)."""
    import yaml

    from accelerators.model import evaluate
    from accelerators.timeloop import architecture_from_timeloop, mapping_from_timeloop, mapping_to_timeloop, \
        parse_art, parse_ert
    from accelerators.workload import to_timeloop as problem_to_timeloop

    from codesign.artifacts import WEIGHTS_DIR
    explicit_weights = weights is not None
    wpath = Path(weights) if weights else WEIGHTS_DIR / "supernet.pt"
    if explicit_weights and not wpath.is_file():
        raise SpecError("--weights", "no such file", str(wpath))
    out = Path(outdir)
    if out.exists() and not out.is_dir():
        raise SpecError("--out", "exists and is not a directory", str(out))
    supernet, have_torch = None, torch_available()
    if wpath.is_file() and have_torch:                    # a bad weights file fails before the work
        from codesign.nn.supernet import load_supernet
        supernet = load_supernet(wpath)
    d = evaluate_design(directory, design_id)
    arch, nr, row = d["arch"], d["network"], d["row"]
    from accelerators.mapping import needs_split
    xy_arch, split = timeloop_architecture(arch)
    # A layer whose mapping splits a dimension across X and Y of one level is written for
    # arch_xy.yaml (a dummy level takes the Y fan-out: Timeloop's only way to write it, and how
    # the model evaluates such a mapping); every other layer for arch.yaml, as it was evaluated.
    uses_xy = [bool(split) and needs_split(m) for m in d["mappings"]]
    dummies = [lv.name for lv in xy_arch.levels if lv.name not in {l.name for l in arch.levels}] if any(uses_xy) else []
    out.mkdir(parents=True, exist_ok=True)
    (out / "layers").mkdir(exist_ok=True)
    for f in list((out / "layers").glob("[0-9]*_*.yaml")) + [out / "subnet.pt", out / "subnet.onnx", out / "arch_xy.yaml"]:
        if f.is_file():                                   # a previous export into the same folder
            f.unlink()
    head = (f"# design {row['id']} of {Path(directory).resolve()}: {arch.name}, {arch.compute.mesh_x}x"
            f"{arch.compute.mesh_y} MACs, {arch.dataflow}, {arch.clock_ghz:g} GHz\n")
    archs = {}                                            # file -> (our architecture, read back)
    for fname, a, note in (("arch.yaml", arch, ""),
                           ("arch_xy.yaml", xy_arch, f"; {', '.join(dummies)}: a dummy level taking the Y fan-out, "
                                                     "for the layers that split a dimension across X and Y")):
        if fname == "arch_xy.yaml" and not any(uses_xy):
            continue
        doc = arch_document(a)
        (out / fname).write_text(head + "# Timeloop v0.4 architecture, ERT (pJ per action) and ART (um^2)" + note
                                 + "\n" + yaml.safe_dump(doc, sort_keys=False))
        # read back as the files will be read: every layer must give the run's energy and cycles
        archs[fname] = (a, architecture_from_timeloop(doc["architecture"], parse_ert(doc["ERT"]), parse_art(doc["ART"])))
    width = max(2, len(str(len(d["layers"]) - 1)))
    layers_out, unverified = [], []
    for i, (layer, r, m, xy) in enumerate(zip(d["layers"], nr.rows, d["mappings"], uses_xy)):
        fname = f"layers/{i:0{width}d}_{_safe(layer.name)}.yaml"
        afile = "arch_xy.yaml" if xy else "arch.yaml"
        tl_arch, back = archs[afile]
        bits = layer_bits(arch, layer.work)
        entries = _explicit_keeps(mapping_to_timeloop(timeloop_mapping(m, split) if xy else m, tl_arch, layer.work),
                                  tl_arch, layer.work)
        ext = {"layer": layer.name, "bits": bits, "energy_pj": float(r["energy_pj"]), "cycles": int(r["cycles"]),
               "macs": int(r["macs"]), "utilization": float(r["utilization"]), "arch": afile}
        doc = {"problem": problem_to_timeloop(layer.work), "mapping": entries, "codesign": ext}
        (out / fname).write_text(
            f"# layer {layer.name} of design {row['id']}: Timeloop v0.4 problem + mapping, use with ../{afile}\n"
            "# codesign.bits: this design's bits per data space (Timeloop keeps one datawidth per level;\n"
            "# codesign.report.design.load_layer applies them); energy_pj / cycles: what the run's model gives\n"
            + yaml.safe_dump(doc, sort_keys=False))
        work = replace(layer.work, bits=bits or {})
        try:
            ev = evaluate(back, work, mapping_from_timeloop(entries, back, work))
            ok = ev.cycles == r["cycles"] and abs(ev.energy_pj - r["energy_pj"]) <= 1e-9 * r["energy_pj"]
        except SpecError:
            ok = False
        if not ok:
            unverified.append(layer.name)
        layers_out.append({"file": fname, "arch": afile, **{k: v for k, v in r.items() if k not in ("mapping", "cached")}})
    if unverified:
        log(f"warning: {len(unverified)} layer file(s) do not evaluate back to the run's numbers: "
            f"{', '.join(unverified[:5])}")
    tot = dict(nr.totals)
    predicted = bool(d["cfg"]["evaluator"].get("cost_predictor"))
    if d["mismatch"] and predicted:
        log("note: the run predicted latency/energy with the learned cost predictor; design.json has the model's "
            "figures (metrics_recomputed): " + ", ".join(f"{k} {s:.4g} -> {v:.4g}" for k, (s, v) in d["mismatch"].items()
                                                          if s is not None))
    elif d["mismatch"]:
        log(f"warning: recomputed metrics differ from the stored ones ({', '.join(d['mismatch'])}): the model or "
            f"mapper changed since the run")
    design = {"run": str(Path(directory).resolve()), "id": row["id"], "generation": row["generation"],
              "genome": row["genome"],
              "accuracy_source": d["cfg"]["evaluator"]["accuracy"]["source"],
              "mapper_budget": d["cfg"]["evaluator"]["mapper_budget"],
              "metrics_stored": row["metrics"], "metrics_recomputed": d["metrics"],
              "matches_store": not d["mismatch"],
              "timeloop_files_verified": not unverified,
              "timeloop_note": ("Timeloop keeps one datawidth per storage level; the per-data-space bit-widths of "
                                "this design are in each layer file's 'codesign.bits' (codesign.report.design.load_layer "
                                "applies them)" + (f"; in arch_xy.yaml {', '.join(dummies)} (dummy) takes the Y fan-out, for the "
                                                   "layers (their 'arch') that split a dimension across X and Y"
                                                   if dummies else "")),
              "architecture": {"name": arch.name, "template": d["space"].hw.template, "clock_ghz": arch.clock_ghz,
                               "bits": dict(arch.bits), "dataflow": arch.dataflow,
                               "pe_array": [arch.compute.mesh_x, arch.compute.mesh_y],
                               "area_mm2": arch.area_um2() / 1e6},
              "totals": tot, "layers": layers_out,
              "files": {"arch": "arch.yaml", "arch_xy": "arch_xy.yaml" if any(uses_xy) else None}}
    torch_note = None
    if supernet is not None:
        from codesign.nn.subnet import export_subnet
        design["files"].update(export_subnet(row["genome"]["net"], wpath, out, onnx=onnx, log=log, supernet=supernet))
    elif not have_torch:
        torch_note = ("note: PyTorch is not installed: wrote the Timeloop files and design.json, skipped "
                      "subnet.pt / subnet.onnx (they need the 'export' extra: pip install 'codesign-sim[export]')")
        design["files"]["subnet"] = None
    else:
        torch_note = (f"note: no supernet weights at {wpath}: wrote the Timeloop files only (the PyTorch subnet "
                      f"needs --weights FILE)")
        design["files"]["subnet"] = None
    (out / "design.json").write_text(json.dumps(design, indent=1, default=plain_value))
    if torch_note:
        log(torch_note)
    return design
