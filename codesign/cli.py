"""The ``codesign`` command line: one entry point for the whole project.

Bad input never produces a traceback: it prints one line naming the file and the field and
exits with status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from accelerators.errors import SpecError


def _load_evaluation_inputs(files, search: int, seed: int):
    """(arch, work, mapping, note) from Timeloop-format files or our own spec files."""
    from accelerators import spec as ours
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
    note = "mapping: as given"
    if mapping is None:
        mapping, note = _best_random_mapping(arch, work, search, seed)
    return arch, work, mapping, note


def _best_random_mapping(arch, work, n: int, seed: int):
    from accelerators.mapping import from_batch
    from accelerators.model import evaluate_batch
    from accelerators.sampling import random_valid_batch
    try:
        batch = random_valid_batch(arch, work, n, seed=seed)
    except ValueError as e:
        raise SpecError("mapping", str(e)) from None
    res = evaluate_batch(arch, work, batch)
    i = int(res.edp.argmin())
    return from_batch(batch, i, arch, work), (f"mapping: lowest-EDP of {len(batch)} random valid "
                                              f"mappings (seed {seed})")


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
    arch, work, mapping, note = _load_evaluation_inputs(args.files, args.search, args.seed)
    try:
        ev = evaluate(arch, work, mapping)
    except SpecError as e:
        raise e.in_file(args.files[-1])
    if args.export_timeloop:
        Path(args.export_timeloop).write_text(to_timeloop_yaml(arch, work, mapping))
    if args.json:
        d = ev.to_dict()
        d["architecture"] = arch.name
        d["workload"] = work.name
        d["note"] = note
        print(json.dumps(d, indent=1))
    else:
        _print_table(arch, work, mapping, ev, note)
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


def cmd_templates(args) -> int:
    from accelerators.spec import list_templates, load_architecture
    for name in list_templates():
        arch = load_architecture(name)
        print(f"{name:<20} {arch.compute.instances:>6} MACs  {arch.dataflow:<18} "
              f"{arch.technology_nm:g} nm  area {arch.area_um2() / 1e6:.3f} mm^2")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="codesign", description="Hardware-neural co-design simulator")
    sub = p.add_subparsers(dest="command", required=True)
    e = sub.add_parser("evaluate", help="evaluate one layer + mapping on an architecture "
                       "(Timeloop-format files, merged in order, or our own spec files)")
    e.add_argument("files", nargs="+", help="YAML files: architecture, problem/workload, mapping, ERT ...")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.add_argument("--export-timeloop", metavar="FILE", help="also write the inputs as Timeloop v0.4 YAML")
    e.add_argument("--search", type=int, default=2000,
                   help="without a mapping: evaluate this many random valid mappings, keep the best EDP")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--backend", choices=("model", "timeloop"), default="model",
                   help="'timeloop' runs Timeloop itself through pytimeloop, when installed")
    e.set_defaults(func=cmd_evaluate)
    t = sub.add_parser("templates", help="list the shipped accelerator templates")
    t.set_defaults(func=cmd_templates)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except SpecError as e:
        print(f"error: {e.one_line()}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError) as e:
        print(f"error: {getattr(e, 'filename', '') or ''}: {e.strerror if isinstance(e, OSError) else e}",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
