"""``codesign evaluate``, ``map``, ``evaluate-network`` and ``templates``: the accelerator model on
one layer or one network (see :mod:`accelerators`)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from accelerators.errors import SpecError
from accelerators.inputs import load_files


def add_accelerator_parsers(sub) -> None:
    """``evaluate``, ``map`` and ``evaluate-network``."""
    e = _layer_parser(sub, "evaluate", "evaluate one layer + mapping on an architecture (Timeloop-format "
                      "files, merged in order, or our own spec files)", "mapping", "print one JSON object")
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
    m = _layer_parser(sub, "map", "find the best mapping of one layer (Timeloop-format or our files)",
                      "constraints", "print the evaluate --json object plus 'mapping'")
    m.add_argument("--out", metavar="FILE", help="write the mapping as Timeloop mapping YAML")
    m.add_argument("--no-constraints", action="store_true", help="ignore dataflow / Timeloop constraints")
    _mapper_options(m)
    m.set_defaults(func=cmd_map)
    n = sub.add_parser("evaluate-network", help="map and evaluate every layer of a network")
    n.add_argument("--arch", required=True, help="template name or architecture file")
    n.add_argument("--workload", required=True,
                   help="directory of Timeloop problem files, a Timeloop problem, or our layers YAML")
    n.add_argument("--json", action="store_true", help="print one JSON object (per-layer rows and totals)")
    n.add_argument("--plot", metavar="PNG", help="also draw per-layer energy by level and latency into this image")
    n.add_argument("--no-constraints", action="store_true", help="ignore the architecture's dataflow")
    _mapper_options(n)
    n.set_defaults(func=cmd_evaluate_network)


def _layer_parser(sub, name: str, what: str, third: str, json_help: str):
    """A subcommand on one layer's YAML files (architecture, problem/workload, ``third``, ERT ...)."""
    p = sub.add_parser(name, help=what)
    p.add_argument("files", nargs="+", help=f"YAML files: architecture, problem/workload, {third}, ERT ...")
    p.add_argument("--json", action="store_true", help=json_help)
    return p


def add_templates_parser(sub) -> None:
    t = sub.add_parser("templates", help="list the shipped accelerator templates")
    t.set_defaults(func=cmd_templates)


def _mapper_options(p):
    p.add_argument("--objective", default="edp",
                   help="mapper objective: edp, energy, latency, or weights like 'energy=1,latency=2'")
    p.add_argument("--budget", type=int, default=30_000, help="mapper: cost-model evaluations per layer")
    p.add_argument("--time-limit", type=float, default=None, help="mapper: seconds per layer (default: no limit)")
    p.add_argument("--seed", type=int, default=0, help="mapper: random seed")


def _run_mapper(arch, work, constraints, args):
    from accelerators.mapper import map_layer
    res = map_layer(arch, work, constraints, objective=args.objective, budget=args.budget, seed=args.seed,
                    time_limit=args.time_limit)
    how = "exhaustive search" if res.exhaustive else "search"
    note = (f"mapping: found by the mapper ({how}, objective {args.objective}, {res.evaluated} "
            f"evaluations, {res.valid} valid, {res.seconds:.2f} s, seed {args.seed}, constraints "
            f"{constraints.name})")
    return res, note


def energy_table_note(files, arch=None) -> str | None:
    """One line when the files hold a Timeloop architecture whose energies per action come, in
    whole or in part, from the built-in table (no ERT / ERT_summary among the files, or one without
    an entry for some component of ``arch``): the user should know which figures are not theirs."""
    from accelerators.energy import DEFAULT_TABLES_PATH
    from accelerators.timeloop import merge_files, parse_ert
    merged, _ = merge_files(files)
    spec = merged.get("architecture")
    if not (isinstance(spec, dict) and ("subtree" in spec or "nodes" in spec)):
        return None                                   # our own spec: the built-in table is its definition
    table = Path(*Path(DEFAULT_TABLES_PATH).parts[-4:])
    ert = merged.get("ERT") or merged.get("ERT_summary")
    if not ert:
        return (f"note: no ERT among the files: energy per action from the built-in table {table} "
                "(give Timeloop's *.ERT.yaml for its figures)")
    if arch is None:
        return None
    names = parse_ert(ert)
    missing = [lv.name for lv in arch.levels if lv.kind != "dummy" and lv.name not in names]
    missing += [arch.compute.name] if arch.compute.name not in names else []
    if missing:
        return f"note: the ERT has no entry for {', '.join(missing)}: their energy per action from the built-in table {table}"
    return None


def _table_note(files, arch) -> None:
    note = energy_table_note(files, arch)
    if note:
        print(note, file=sys.stderr)


def _print_table(arch, work, mapping, ev, note, out=None):
    out = out or sys.stdout                   # the current one (not the one at import)
    print(arch.summary(), file=out)
    print(f"workload {work.name}: " + ", ".join(f"{d}={work.bounds[d]}" for d in work.dims), file=out)
    print(note, file=out)
    print(mapping.loop_nest(arch), file=out)
    print(f"\n{'level':<24}{'inst':>6}{'used':>6}  {'space':<8}{'reads':>14}{'fills':>14}"
          f"{'updates':>14}{'energy_pj':>16}", file=out)
    for lv in ev.levels:
        # the level's name on its first row, whatever that row is (a level that keeps no data space
        # but leaks, e.g. a bypassed or dummy level, has its leakage row under its own name)
        name = f"{lv.name:<24}{lv.instances:>6}{lv.instances_used:>6}"
        rows = [f"{ds:<8}{c['reads']:>14}{c['fills']:>14}{c['updates']:>14}{c['energy_pj']:>16.2f}"
                for ds, c in lv.dataspaces.items()]
        if lv.leak_pj:
            rows.append(f"{'leakage':<8}{'':>42}{lv.leak_pj:>16.2f}")
        for j, row in enumerate(rows or [f"{'(none)':<8}"]):      # (none): keeps no data space
            print(f"{name if j == 0 else ' ' * 36}  {row}".rstrip(), file=out)
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
    arch, work, mapping, constraints = load_files(args.files)
    _table_note(args.files, arch)
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
    arch, work, _, constraints = load_files(args.files)
    _table_note(args.files, arch)
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
    layers = load_layers(args.workload, expand=False)      # repeat: a multiplier
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


def cmd_templates(args) -> int:
    from accelerators.spec import list_templates, load_architecture
    for name in list_templates():
        arch = load_architecture(name)
        print(f"{name:<20} {arch.compute.instances:>6} MACs  {arch.dataflow:<18} "
              f"{arch.technology_nm:g} nm  area {arch.area_um2() / 1e6:.3f} mm^2")
    return 0
