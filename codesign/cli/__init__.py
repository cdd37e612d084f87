"""The ``codesign`` command line: one entry point for the whole project.

Bad input never produces a traceback: it prints one line naming the file and the field and
exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError
from codesign.artifacts import WEIGHTS_DIR
from codesign.cli.runner import run


def _load_inputs(files):
    """(arch, work, mapping or None, constraints) from Timeloop-format files or our own spec
    files. Constraints: the Timeloop ``architecture_constraints``/``constraints`` when given, else
    our architecture's dataflow."""
    from accelerators import spec as ours
    from accelerators.constraints import dataflow_constraints, from_timeloop as constraints_from_timeloop
    from accelerators.timeloop import load_inputs, mapping_from_timeloop, merge_files
    from accelerators.workload import from_timeloop

    merged, origin = merge_files(files)
    arch_spec = merged.get("architecture")
    timeloop_arch = isinstance(arch_spec, dict) and ("subtree" in arch_spec or "nodes" in arch_spec)
    if timeloop_arch:
        arch, work, mapping = load_inputs(files)
    else:
        if "levels" in merged:                      # an architecture file of ours on its own
            arch_spec, arch_src = {k: merged[k] for k in merged if k in ours.ARCH_KEYS}, origin["levels"]
        elif isinstance(arch_spec, str):
            arch_src = origin["architecture"]
            try:
                arch = ours.load_architecture(arch_spec)
            except SpecError as e:
                raise e.in_file(arch_src)
            arch_spec = None
        elif isinstance(arch_spec, dict):
            arch_src = origin["architecture"]
        else:
            raise SpecError("architecture", "missing (give a template, one of ours, or a Timeloop "
                            "architecture)", str(files[-1]))
        if arch_spec is not None:
            try:
                arch = ours.build_architecture(arch_spec)
            except SpecError as e:
                raise e.in_file(arch_src)
        if "workload" in merged:
            try:
                work = ours.build_workload(merged["workload"])
            except SpecError as e:
                raise e.in_file(origin["workload"])
        elif "problem" in merged:
            try:
                work = from_timeloop(merged["problem"])
            except SpecError as e:
                raise e.in_file(origin["problem"])
        else:
            raise SpecError("workload", "missing (give 'workload:' or a Timeloop 'problem:')", str(files[-1]))
        mapping = None
        if merged.get("mapping"):
            try:
                m = merged["mapping"]
                mapping = (mapping_from_timeloop(m, arch, work) if isinstance(m, list)
                           else ours.build_mapping(m, arch, work))
            except SpecError as e:
                raise e.in_file(origin["mapping"])
    key = next((k for k in ("architecture_constraints", "constraints") if merged.get(k)), None)
    if key is None and timeloop_arch and isinstance(arch_spec, dict) and arch_spec.get("constraints"):
        key, merged = "constraints", {"constraints": arch_spec["constraints"]}
        origin["constraints"] = origin["architecture"]
    if key is not None:
        try:
            constraints = constraints_from_timeloop(merged[key], arch, work, where=key)
        except SpecError as e:
            raise e.in_file(origin[key])
    else:
        constraints = dataflow_constraints(arch, work)
    return arch, work, mapping, constraints


def _run_mapper(arch, work, constraints, args):
    from accelerators.mapper import map_layer
    res = map_layer(arch, work, constraints, objective=args.objective, budget=args.budget, seed=args.seed,
                    time_limit=args.time_limit)
    how = "exhaustive search" if res.exhaustive else "search"
    note = (f"mapping: found by the mapper ({how}, objective {args.objective}, {res.evaluated} "
            f"evaluations, {res.valid} valid, {res.seconds:.2f} s, seed {args.seed}, constraints "
            f"{constraints.name})")
    return res, note


def _print_table(arch, work, mapping, ev, note, out=sys.stdout):
    print(arch.summary(), file=out)
    print(f"workload {work.name}: " + ", ".join(f"{d}={work.bounds[d]}" for d in work.dims), file=out)
    print(note, file=out)
    print(mapping.loop_nest(arch), file=out)
    print(f"\n{'level':<24}{'inst':>6}{'used':>6}  {'space':<8}{'reads':>14}{'fills':>14}"
          f"{'updates':>14}{'energy_pj':>16}", file=out)
    for lv in ev.levels:
        first = True
        for ds, c in lv.dataspaces.items():
            head = f"{lv.name:<24}{lv.instances:>6}{lv.instances_used:>6}" if first else " " * 36
            print(f"{head}  {ds:<8}{c['reads']:>14}{c['fills']:>14}{c['updates']:>14}"
                  f"{c['energy_pj']:>16.2f}", file=out)
            first = False
        if lv.leak_pj:
            print(f"{'':<36}  {'leak':<8}{'':>42}{lv.leak_pj:>16.2f}", file=out)
    print(f"{arch.compute.name:<24}{arch.compute.instances:>6}{ev.macs_used:>6}  {'compute':<8}"
          f"{ev.computes:>14}{'':>28}{ev.mac_energy_pj:>16.2f}", file=out)
    print(f"\ncomputes {ev.computes}  cycles {ev.cycles}  utilization {100 * ev.utilization:.2f}%  "
          f"energy {ev.energy_pj:.6g} pJ ({1000 * ev.energy_per_mac_pj:.2f} fJ/MAC)  "
          f"EDP {ev.edp:.4g} pJ*cycles  area {ev.area_um2 / 1e6:.4f} mm^2", file=out)


def cmd_evaluate(args) -> int:
    from accelerators.model import evaluate
    from accelerators.timeloop import to_timeloop_yaml
    if args.backend == "timeloop":
        return _evaluate_with_timeloop(args)
    arch, work, mapping, constraints = _load_inputs(args.files)
    note = "mapping: as given"
    if mapping is None:
        res, note = _run_mapper(arch, work, constraints, args)
        mapping = res.mapping
    try:
        ev = evaluate(arch, work, mapping, link_transfers=not args.no_link_transfers)
    except SpecError as e:
        raise e.in_file(args.files[-1])
    fill_drain = None
    if args.fill_drain:
        from accelerators.systolic import cycles_with_fill_drain, fill_drain_cycles
        fill_drain = {"fill_drain_cycles": fill_drain_cycles(arch, work, mapping),
                      "cycles_with_fill_drain": cycles_with_fill_drain(ev, arch, work, mapping)}
    if args.export_timeloop:
        Path(args.export_timeloop).write_text(to_timeloop_yaml(arch, work, mapping))
    if args.json:
        d = ev.to_dict()
        d["architecture"] = arch.name
        d["workload"] = work.name
        d["note"] = note
        if fill_drain:
            d.update(fill_drain)
        print(json.dumps(d, indent=1))
    else:
        _print_table(arch, work, mapping, ev, note)
        if fill_drain:
            print(f"systolic fill/drain (SCALE-Sim's ws model): +{fill_drain['fill_drain_cycles']:,} "
                  f"cycles -> {fill_drain['cycles_with_fill_drain']:,}")
        if args.export_timeloop:
            print(f"wrote Timeloop v0.4 YAML to {args.export_timeloop}")
    return 0


def _evaluate_with_timeloop(args) -> int:
    """Optional backend: the same files through Timeloop itself (pytimeloop + timeloop-model)."""
    from accelerators.timeloop_stats import evaluate_files_with_timeloop, pytimeloop_available
    if not pytimeloop_available():
        raise SpecError("--backend", "timeloop needs pytimeloop (not on PyPI: build it from "
                        "Accelergy-Project/timeloop-python), which is not importable here")
    try:
        d = evaluate_files_with_timeloop(args.files)
    except RuntimeError as e:
        raise SpecError("--backend", str(e)) from None
    d["note"] = "evaluated by Timeloop (pytimeloop backend)"
    if args.json:
        print(json.dumps(d, indent=1))
    else:
        for lv in d["levels"]:
            for ds, c in lv["dataspaces"].items():
                print(f"{lv['name']:<24}{lv['instances']:>6}  {ds:<8}{c['reads']:>14}{c['fills']:>14}{c['updates']:>14}")
        print(f"computes {d['computes']}  cycles {d['cycles']}  energy {d['energy_pj']:.6g} pJ")
    return 0


def cmd_map(args) -> int:
    import yaml
    from accelerators.model import evaluate
    from accelerators.timeloop import mapping_to_timeloop
    arch, work, _, constraints = _load_inputs(args.files)
    if args.no_constraints:
        from accelerators.constraints import FREE
        constraints = FREE
    res, note = _run_mapper(arch, work, constraints, args)
    ev = evaluate(arch, work, res.mapping)
    tl_mapping = mapping_to_timeloop(res.mapping, arch, work)
    if args.out:
        Path(args.out).write_text(yaml.safe_dump({"mapping": tl_mapping}, sort_keys=False))
    if args.json:
        d = ev.to_dict()
        d.update(architecture=arch.name, workload=work.name, note=note, mapping=tl_mapping,
                 mapper={"evaluated": res.evaluated, "valid": res.valid, "exhaustive": res.exhaustive,
                         "seconds": res.seconds, "objective": args.objective, "seed": args.seed,
                         "constraints": constraints.name})
        print(json.dumps(d, indent=1))
    else:
        _print_table(arch, work, res.mapping, ev, note)
        if args.out:
            print(f"wrote the mapping (Timeloop format) to {args.out}")
    return 0


def cmd_evaluate_network(args) -> int:
    from accelerators.network import evaluate_network, load_layers, plot_network
    from accelerators.spec import load_architecture
    arch = load_architecture(args.arch)
    layers = load_layers(args.workload)
    res = evaluate_network(layers, arch, None if args.no_constraints else "dataflow",
                           objective=args.objective, budget=args.budget, seed=args.seed,
                           progress=not args.json)
    if args.plot:
        plot_network(res, args.plot)
    if args.json:
        print(res.to_json())
        return 0
    import pandas as pd
    t = res.table
    cols = ["layer", "macs", "cycles", "utilization", "energy_pj", "edp_pj_cycles", "cached"]
    with pd.option_context("display.width", 200, "display.max_rows", 500, "display.float_format", "{:.4g}".format):
        print(t[cols].to_string(index=False))
    tot = res.totals
    print(f"\n{arch.name}: {tot['layers']} layers ({tot['distinct_shapes']} distinct shapes), "
          f"{tot['macs']:,} MACs, energy {tot['energy_pj'] / 1e6:.2f} uJ, latency {tot['cycles']:,} cycles "
          f"({1e3 * tot['latency_s']:.3f} ms), EDP {tot['edp_pj_cycles']:.4g} pJ*cycles, "
          f"utilization {100 * tot['utilization']:.1f}%, area {tot['area_um2'] / 1e6:.3f} mm^2")
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


def cmd_train_supernet(args) -> int:
    from codesign.nn.train import PHASES, TrainConfig, train_supernet
    epochs = {}
    for part in args.epochs.split(","):
        try:
            k, v = part.split("=")
            epochs[k.strip()] = int(v)
        except ValueError:
            raise SpecError("--epochs", f"expected phase=N pairs like full=15,kernel=5, got {part!r}") from None
        if k.strip() not in PHASES or int(v) < 0:
            raise SpecError("--epochs", f"unknown phase {k!r} or negative epochs (phases: {', '.join(PHASES)})")
    if not Path(args.data).exists():
        raise SpecError("--data", "no such file or directory", args.data)
    cfg = TrainConfig(data=args.data, out=args.out, epochs={**TrainConfig.__dataclass_fields__["epochs"].default_factory(), **epochs},
                      batch_size=args.batch_size, seed=args.seed, threads=args.threads,
                      max_batches=args.max_batches, lr=args.lr, elastic_lr=args.elastic_lr,
                      init_from=args.init_from, sandwich_random=args.sandwich_random)
    if args.sandwich_random < 0:
        raise SpecError("--sandwich-random", f"must be >= 0, got {args.sandwich_random}")
    if args.init_from and not Path(args.init_from).is_file():
        raise SpecError("--init-from", "no such file", args.init_from)
    path = train_supernet(cfg, resume=args.resume, progress=not args.quiet)
    print(f"wrote {path}")
    return 0


def _genome_arg(text: str, where: str = "--genome") -> dict:
    from codesign.space.genome import DEFAULT_SPACE
    if text == "max":
        return DEFAULT_SPACE.max_genome()
    if text == "min":
        return DEFAULT_SPACE.min_genome()
    return DEFAULT_SPACE.validate(text, where=where)


def _eval_data(data: str, holdout: int = 5000, seed: int = 0):
    from codesign.artifacts import eval_split
    return eval_split(data, holdout, seed)


def _weights(path) -> Path:
    from codesign.artifacts import supernet_path
    return supernet_path(path)


def cmd_accuracy(args) -> int:
    from codesign.predictors.accuracy import BITS
    genome = _genome_arg(args.genome)
    if args.bits not in BITS:
        raise SpecError("--bits", f"{args.bits} is not one of {list(BITS)}")
    if args.data:
        from codesign.nn.measure import measure
        from codesign.nn.supernet import load_supernet
        net = load_supernet(_weights(args.weights))
        hold, test = _eval_data(args.data)
        top1 = measure(net, genome, args.bits, hold.images, test.images, test.labels, clip=args.clip, bn=args.bn)
        source = "measured"
    else:
        from codesign.predictors.accuracy import Predictor
        pred = Predictor.load(args.predictor or WEIGHTS_DIR / "predictor.npz")
        top1, source = float(pred.predict([genome], [args.bits])[0]), "predicted"
    d = {"genome": genome, "bits": args.bits, "top1": round(top1, 3), "source": source}
    print(json.dumps(d) if args.json else f"top-1 {top1:.2f}% ({source}, {args.bits}-bit)")
    return 0


def cmd_accuracy_data(args) -> int:
    bits = _bits_list(args.bits)
    if args.draws < 1:
        raise SpecError("--draws", "needs at least 1", str(args.draws))
    meta = Path(args.out).with_suffix(".json")
    if meta.is_file() and Path(args.out).is_file() and Path(args.out).stat().st_size:
        was = json.loads(meta.read_text())
        for flag, key, now, default in (("--clip", "clip", args.clip, "minmax"), ("--bn", "bn", args.bn, "float"),
                                        ("--bits", "bits", list(bits), [4, 6, 8, 16]),
                                        ("--draws", "draws", args.draws, 1)):
            if was.get(key, default) != now:
                shown = ",".join(map(str, was.get(key, default))) if key == "bits" else was.get(key, default)
                raise SpecError(flag, f"{args.out} was measured with {flag} {shown}; continue it with that "
                                      "or write another file")
    from codesign.nn.measure import accuracy_dataset
    from codesign.nn.supernet import load_supernet
    net = load_supernet(_weights(args.weights))
    from codesign.artifacts import predictor_split
    # measured on the held-out training images; BN recalibrated on 2,000 other training images
    shard = _shard(args.shard)
    device = _device(args.device)
    calib, hold = predictor_split(args.data, holdout=args.holdout, eval_images=args.eval_images)
    from codesign.nn.measure import write_dataset_meta
    write_dataset_meta(args.out, weights=_weights(args.weights), data=args.data, holdout=args.holdout,
                       eval_images=len(hold.labels), calib_images=len(calib), seed=args.seed, clip=args.clip,
                       bits=bits, draws=args.draws, bn=args.bn)
    rows = accuracy_dataset(net, calib, hold.images, hold.labels, args.out, n=args.n, seed=args.seed,
                            progress=not args.quiet, shard=shard, device=device, eval_batch=args.eval_batch,
                            clip=args.clip, bits=bits, draws=args.draws, bn=args.bn)
    print(f"{len(rows)} measured subnets in {args.out}")
    return 0


def _bits_list(text: str) -> tuple:
    try:
        bits = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise SpecError("--bits", "expected a comma-separated list out of 4,6,8,16", text) from None
    from codesign.predictors.accuracy import BITS        # torch-free; the same tuple codesign.nn.measure measures
    if not bits or any(b not in BITS for b in bits) or len(set(bits)) != len(bits):
        raise SpecError("--bits", "expected distinct bit-widths out of 4,6,8,16", text)
    return bits


def _shard(text: str) -> tuple[int, int]:
    try:
        i, k = (int(v) for v in text.split("/"))
    except ValueError:
        raise SpecError("--shard", "expected I/K, e.g. 0/4", text) from None
    if not (k >= 1 and 0 <= i < k):
        raise SpecError("--shard", "expected 0 <= I < K", text)
    return i, k


def _device(name: str) -> str:
    import torch
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SpecError("--device", "CUDA is not available on this machine", name)
    if name != "cpu" and not name.startswith("cuda"):
        raise SpecError("--device", "expected cpu, cuda, cuda:N or auto", name)
    return name


def _read_rows(paths) -> list:
    """The rows of one or more accuracy-data files; where several measure the same (genome,
    bit-width), the later file's row replaces the earlier one's (e.g. repeated 4-bit draws over a
    single-draw data set)."""
    if not isinstance(paths, (list, tuple)):
        paths = [paths]
    rows = {}
    for path in paths:
        for r in _read_one(path):
            key = (json.dumps(r.get("genome"), sort_keys=True), r.get("bits"))
            if key in rows and rows[key][0] == path:
                key = (key, len(rows))                # a file's own repeats are all kept
            rows[key] = (path, r)
    return [r for _, r in rows.values()]


def _read_one(path) -> list:
    from codesign.jsonio import read_jsonl
    return read_jsonl(path, cut_last="error", field="--dataset")


def cmd_train_predictor(args) -> int:
    from codesign.predictors.accuracy import train_predictor
    pred, m = train_predictor(_read_rows(args.dataset), seed=args.seed, kind=args.kind, hidden=args.hidden,
                              epochs=args.epochs, members=args.members, use_summary=not args.no_summary,
                              holdout=args.holdout)
    pred.save(args.out)
    print(json.dumps({"heldout": m, "out": args.out}) if args.json else
          f"held-out ({m['n']} subnets): Kendall tau {m['kendall_tau']:.3f}, Spearman {m['spearman']:.3f}, "
          f"RMSE {m['rmse']:.2f} points; wrote {args.out}")
    if not args.json:
        for b, mb in m.get("per_bits", {}).items():
            print(f"  {b:>2}-bit ({mb['n']} subnets): Kendall tau {mb['kendall_tau']:.3f}, "
                  f"Spearman {mb['spearman']:.3f}, RMSE {mb['rmse']:.2f}")
    return 0


def cmd_proxies(args) -> int:
    from codesign.nn.data import load_split
    from codesign.nn.proxies import correlations
    rows = [r for r in _read_rows(args.dataset) if r.get("bits", 16) == args.bits][: args.n]
    if len(rows) < 3:
        raise SpecError("--dataset", f"needs at least 3 measured subnets at {args.bits} bits", args.dataset[0])
    test = load_split(args.data, "test")
    images = test.images[np.random.default_rng(args.seed).choice(len(test), 64, replace=False)]
    res = correlations(rows, images, seed=args.seed, progress=not args.json)
    if args.json:
        print(json.dumps(res))
    else:
        print(f"{'proxy':<10}{'Spearman':>10}{'Kendall':>10}   ({res['n']} subnets, {args.bits}-bit accuracy)")
        for k in ("naswot", "synflow", "params", "macs"):
            print(f"{k:<10}{res[k]['spearman']:>10.3f}{res[k]['kendall']:>10.3f}")
    return 0


def cmd_search(args) -> int:
    from codesign.rundir.search import resume_search, search_config, start_search
    if args.resume:
        out = Path(args.resume)
        res = resume_search(out, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet)
    else:
        from codesign.search.problem import evaluator_config
        from codesign.space.joint import read_space
        space_dict, name = read_space(args.space)
        cost = None
        if args.cost == "predictor":
            from codesign.predictors.cost import CostPredictor
            from codesign.space.joint import space_from_dict
            cost = Path(args.cost_predictor) if args.cost_predictor else WEIGHTS_DIR / "cost_predictor.npz"
            CostPredictor.load(cost).check_space(space_from_dict(space_dict, name))   # fail now, not in a worker
        ev = evaluator_config(space_dict, name, args.accuracy, predictor=args.predictor, weights=args.weights,
                              data=args.data, mapper_budget=args.mapper_budget, cost_predictor=cost)
        if args.accuracy == "predictor":
            from codesign.predictors.accuracy import Predictor
            Predictor.load(args.predictor or WEIGHTS_DIR / "predictor.npz")      # fail now, not in a worker
        objectives = [o.strip() for o in args.objectives.split(",")] if args.objectives else None
        cfg = search_config(ev, algorithm=args.algorithm, budget=args.budget, population=args.population,
                            seed=args.seed, mutation=args.mutation, crossover=args.crossover, objectives=objectives,
                            scalarize=args.scalarize, fixed_net=_genome_arg(args.net, "--net") if args.net else None)
        out = Path(args.out)
        res = start_search(out, cfg, workers=args.workers, scheduler=args.scheduler, progress=not args.quiet)
    _print_front(res, out)
    if not args.no_plot:
        from codesign.report.plots import plot_dir
        paths = plot_dir(out, formats=("png",), log=lambda *a: None)
        print(f"plots: {', '.join(str(p) for p in paths)}")
    return 0


def _print_front(res, out: Path) -> None:
    from codesign.search.algorithms import front_table
    front = front_table(res.front())
    cols = [c for c in ["id", "top1_pct", "latency_ms", "energy_uj", "edp_uj_ms", "area_mm2", "hw_pe_x", "hw_pe_y",
                        "hw_bits", "hw_dataflow", "net_r"] if c in front.columns]
    if len(front):
        print(front[cols].sort_values(cols[2] if len(cols) > 2 else "id").to_string(index=False))
    hv = res.hypervolume[-1][2] if res.hypervolume else 0.0
    print(f"{len(res.rows)} candidates ({res.evaluated} evaluated now, {len(res.rows) - res.evaluated} from the "
          f"store) in {res.seconds:.1f} s; hypervolume {hv:.6g}; front of {len(front)} written to {out / 'front.csv'}")


def cmd_model_card(args) -> int:
    from codesign.nn.model_card import measure_card, training_summary, write_card
    summary = training_summary(args.run)
    weights = _weights(args.weights or Path(args.run) / "supernet.pt")
    rows = measure_card(weights, args.data, samples=args.samples, seed=args.seed, test_images=args.test_images,
                        progress=not args.quiet, clip=args.clip, bn=args.bn)
    n = args.test_images or len(_eval_data(args.data)[1].labels)
    write_card(rows, summary, args.out, weights=weights, data=args.data, test_images=n, clip=args.clip, bn=args.bn)
    print(Path(args.out).read_text())
    return 0


def cmd_templates(args) -> int:
    from accelerators.spec import list_templates, load_architecture
    for name in list_templates():
        arch = load_architecture(name)
        print(f"{name:<20} {arch.compute.instances:>6} MACs  {arch.dataflow:<18} "
              f"{arch.technology_nm:g} nm  area {arch.area_um2() / 1e6:.3f} mm^2")
    return 0


def _mapper_options(p):
    p.add_argument("--objective", default="edp",
                   help="edp (default), energy, latency, or weights like 'energy=1,latency=2'")
    p.add_argument("--budget", type=int, default=30_000, help="cost-model evaluations per layer")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per layer")
    p.add_argument("--seed", type=int, default=0)


_CLIP_HELP = "quantization range calibration: minmax (full range) or mse (least squared error)"
_BN_HELP = ("BN statistics of a quantized subnet: re-estimated on it (quantized, the default) or those of "
            "the float subnet (float; data measured before 2026-12-01)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codesign", description="Hardware-neural co-design simulator")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="evaluate one layer + mapping on an architecture "
                       "(Timeloop-format files, merged in order, or our own spec files)")
    e.add_argument("files", nargs="+", help="YAML files: architecture, problem/workload, mapping, ERT ...")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--export-timeloop", metavar="FILE", help="also write the inputs as Timeloop v0.4 YAML")
    _mapper_options(e)
    e.add_argument("--backend", choices=("model", "timeloop"), default="model",
                   help="'timeloop' runs Timeloop itself through pytimeloop, when installed")
    e.add_argument("--no-link-transfers", action="store_true",
                   help="no neighbour forwarding between PEs (Timeloop's TIMELOOP_DISABLE_LINK_TRANSFERS);"
                        " by default links are used where Timeloop uses them")
    e.add_argument("--fill-drain", action="store_true",
                   help="also report cycles with a systolic array's pipeline fill and drain "
                        "(SCALE-Sim's weight-stationary model; off by default, as in Timeloop)")
    e.set_defaults(func=cmd_evaluate)
    m = sub.add_parser("map", help="find the best mapping of one layer (Timeloop-format or our files)")
    m.add_argument("files", nargs="+", help="YAML files: architecture, problem/workload, constraints, ERT ...")
    m.add_argument("--json", action="store_true", help="print the evaluate --json object plus 'mapping'")
    m.add_argument("--out", metavar="FILE", help="write the mapping as Timeloop mapping YAML")
    m.add_argument("--no-constraints", action="store_true", help="ignore dataflow / Timeloop constraints")
    _mapper_options(m)
    m.set_defaults(func=cmd_map)
    n = sub.add_parser("evaluate-network", help="map and evaluate every layer of a network")
    n.add_argument("--arch", required=True, help="template name or architecture file")
    n.add_argument("--workload", required=True,
                   help="directory of Timeloop problem files, a Timeloop problem, or our layers YAML")
    n.add_argument("--json", action="store_true")
    n.add_argument("--plot", metavar="PNG", help="per-layer energy by level and latency")
    n.add_argument("--no-constraints", action="store_true", help="ignore the architecture's dataflow")
    _mapper_options(n)
    n.set_defaults(func=cmd_evaluate_network)
    tr = sub.add_parser("train-supernet", help="train the Once-for-All supernet (progressive shrinking)")
    tr.add_argument("--data", required=True, help="ImageFolder dir/zips (train, test) or cifar-10-batches-py")
    tr.add_argument("--out", required=True, help="run directory (checkpoint.pt, train_log.jsonl, supernet.pt)")
    tr.add_argument("--epochs", default="full=15,kernel=5,depth=5,expand=8", help="epochs per phase")
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    tr.add_argument("--lr", type=float, default=0.1, help="peak learning rate of the full phase (cosine)")
    tr.add_argument("--elastic-lr", type=float, default=0.03, help="peak learning rate of the elastic phases")
    tr.add_argument("--init-from", metavar="FILE",
                    help="warm start from a supernet state_dict, e.g. an earlier run's teacher.pt")
    tr.add_argument("--sandwich-random", type=int, default=1,
                    help="sandwich phase (BigNAS): random subnets per step besides the largest and smallest")
    tr.add_argument("--max-batches", type=int, default=None, help="batches per epoch (smoke runs)")
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=cmd_train_supernet)
    from codesign.nn.quant_ranges import BN_MODES, CLIPS, DEFAULT_BN, DEFAULT_CLIP
    a = sub.add_parser("accuracy", help="top-1 of one subnet: measured (--data) or predicted")
    a.add_argument("--genome", required=True, help="JSON genome, or max / min")
    a.add_argument("--bits", type=int, default=8)
    a.add_argument("--data", help="data set root (train/test); measures on its test split")
    a.add_argument("--weights", help="supernet state_dict (default: the shipped one)")
    a.add_argument("--predictor", help="predictor .npz (default: the shipped one)")
    a.add_argument("--json", action="store_true")
    a.add_argument("--clip", choices=CLIPS, default=DEFAULT_CLIP,
                    help=_CLIP_HELP)
    a.add_argument("--bn", choices=BN_MODES, default=DEFAULT_BN,
                    help=_BN_HELP)
    a.set_defaults(func=cmd_accuracy)
    ad = sub.add_parser("accuracy-data", help="measure random subnets for the predictor (resumable)")
    ad.add_argument("--data", required=True)
    ad.add_argument("--weights")
    ad.add_argument("--out", required=True, help="JSONL file; re-running continues it")
    ad.add_argument("--n", type=int, default=4000,
                    help="(genome, bit-width) measurements; every genome is measured at 4, 6, 8 and 16 bits")
    ad.add_argument("--holdout", type=int, default=5000,
                    help="the supernet training's held-out count (train-supernet --holdout): measured only on those")
    ad.add_argument("--eval-images", type=int, default=None,
                    help="measure on a class-balanced subset of that many held-out images (default: all)")
    ad.add_argument("--seed", type=int, default=0)
    ad.add_argument("--shard", default="0/1", help="I/K: measure every K-th genome of the plan, from the I-th "
                    "(K processes or machines, one file each; concatenate them afterwards)")
    ad.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    ad.add_argument("--eval-batch", type=int, default=None, help="evaluation batch (speed only)")
    ad.add_argument("--quiet", action="store_true")
    ad.add_argument("--bits", default="4,6,8,16", help="bit-widths to measure (the genomes stay the full "
                    "plan's; --n counts genome x bit-width pairs)")
    ad.add_argument("--draws", type=int, default=1, help="independent calibration draws per measurement "
                    "(top1 = their mean; e.g. --bits 4 --draws 3, where 4-bit results depend on the draw)")
    ad.add_argument("--clip", choices=CLIPS, default=DEFAULT_CLIP,
                    help=_CLIP_HELP)
    ad.add_argument("--bn", choices=BN_MODES, default=DEFAULT_BN,
                    help=_BN_HELP)
    ad.set_defaults(func=cmd_accuracy_data)
    tp = sub.add_parser("train-predictor", help="fit the accuracy predictor on measured subnets")
    tp.add_argument("--dataset", required=True, nargs="+", help="accuracy-data JSONL file(s); a later "
                    "file's row for the same genome and bit-width replaces an earlier file's")
    tp.add_argument("--out", required=True)
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("--holdout", type=float, default=0.2, help="share of the genomes held out for the report")
    tp.add_argument("--kind", default="kernel", help="kernel (kernel ridge, default), ridge (linear) or mlp (ensemble)")
    tp.add_argument("--no-summary", action="store_true", help="one-hot code only (no log-MACs / size features)")
    tp.add_argument("--hidden", type=int, default=128, help="mlp: hidden units")
    tp.add_argument("--epochs", type=int, default=400, help="mlp: epochs")
    tp.add_argument("--members", type=int, default=5, help="mlp: ensemble size (mean of the members)")
    tp.add_argument("--json", action="store_true")
    tp.set_defaults(func=cmd_train_predictor)
    px = sub.add_parser("proxies", help="zero-shot proxies' correlation with measured accuracy")
    px.add_argument("--data", required=True)
    px.add_argument("--dataset", required=True, nargs="+", help="measured subnets (accuracy-data output, one or more files)")
    px.add_argument("--bits", type=int, default=16)
    px.add_argument("--n", type=int, default=200)
    px.add_argument("--seed", type=int, default=0)
    px.add_argument("--json", action="store_true")
    px.set_defaults(func=cmd_proxies)
    se = sub.add_parser("search", help="joint network-accelerator search (NSGA-II, scalarized, random, "
                        "or the sequential / hardware-only baselines); resumable")
    se.add_argument("--space", help="search space YAML (default specs/spaces/default.yaml)")
    se.add_argument("--objectives", help="comma list of accuracy, latency, energy, edp, area")
    se.add_argument("--budget", type=int, default=200, help="candidate evaluations")
    se.add_argument("--population", type=int, default=24)
    se.add_argument("--algorithm", choices=("nsga2", "scalar", "random", "sequential", "hw-only"), default="nsga2")
    se.add_argument("--scalarize", help="with --algorithm scalar: acc-lat:alpha=A (top1 - A*latency_ms) or "
                    "mnas:target_ms=T,w=-0.07 (top1*(latency/T)^w)")
    se.add_argument("--net", help="with --algorithm hw-only: the fixed network (JSON genome, max or min; default max)")
    se.add_argument("--mutation", type=float, default=0.08, help="per-gene mutation probability")
    se.add_argument("--crossover", type=float, default=0.9)
    se.add_argument("--accuracy", choices=("predictor", "measured", "naswot", "macs"), default="predictor",
                    help="accuracy source: the shipped predictor, measured on the supernet (--data), or a "
                    "zero-shot proxy (naswot needs --data; macs needs nothing)")
    se.add_argument("--predictor")
    se.add_argument("--weights")
    se.add_argument("--data")
    se.add_argument("--mapper-budget", type=int, default=1500, help="mapper evaluations per layer shape")
    se.add_argument("--cost", choices=("model", "predictor"), default="model",
                    help="latency/energy from the mapped model (default) or the learned cost predictor (fast path)")
    se.add_argument("--cost-predictor", help="cost predictor .npz (default: the shipped one)")
    se.add_argument("--seed", type=int, default=0)
    se.add_argument("--out", default="runs/search", help="run directory (config.json, store.sqlite, front.csv)")
    se.add_argument("--resume", metavar="DIR", help="continue the run in DIR with its own configuration")
    se.add_argument("--workers", type=int, default=1, help="local worker processes")
    se.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786): evaluate on that cluster")
    se.add_argument("--no-plot", action="store_true", help="skip DIR/plots (Pareto front, hypervolume, "
                    "per-layer energy of the lowest-EDP design)")
    se.add_argument("--quiet", action="store_true")
    se.set_defaults(func=cmd_search)
    mc = sub.add_parser("model-card", help="measure a trained supernet and write its model card")
    mc.add_argument("--run", required=True, help="the train-supernet run directory (train_state.json)")
    mc.add_argument("--data", required=True)
    mc.add_argument("--weights", help="default: RUN/supernet.pt")
    mc.add_argument("--out", required=True, help="Markdown file (a .json twin is written beside it)")
    mc.add_argument("--samples", type=int, default=8, help="random subnets besides the smallest and largest")
    mc.add_argument("--test-images", type=int, default=None, help="first N test images (default: all)")
    mc.add_argument("--seed", type=int, default=0)
    mc.add_argument("--quiet", action="store_true")
    mc.add_argument("--clip", choices=CLIPS, default=DEFAULT_CLIP,
                    help=_CLIP_HELP)
    mc.add_argument("--bn", choices=BN_MODES, default=DEFAULT_BN,
                    help=_BN_HELP)
    mc.set_defaults(func=cmd_model_card)
    from codesign.cli.sweep import add_sweep_parser
    add_sweep_parser(sub)
    from codesign.cli.export import add_export_parsers
    add_export_parsers(sub)
    from codesign.cli.cost import add_cost_parsers
    add_cost_parsers(sub)
    t = sub.add_parser("templates", help="list the shipped accelerator templates")
    t.set_defaults(func=cmd_templates)
    return p


def main(argv=None) -> int:
    return run(build_parser(), argv)


if __name__ == "__main__":
    sys.exit(main())
