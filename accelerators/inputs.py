"""Loading one layer's inputs from YAML files: Timeloop-format files (merged in order, as
``timeloop-model`` does) or our own spec files, into (architecture, workload, mapping or None,
mapping constraints)."""
from __future__ import annotations

from dataclasses import replace

from .errors import SpecError


def load_files(files):
    """(arch, work, mapping or None, constraints) from Timeloop-format files or our own spec
    files. Constraints: the Timeloop ``architecture_constraints``/``constraints`` when given, else
    our architecture's dataflow."""
    from . import spec as ours
    from .constraints import dataflow_constraints, from_timeloop as constraints_from_timeloop
    from .timeloop import load_inputs, mapping_from_timeloop, merge_files
    from .workload import from_timeloop

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
                arch = replace(ours.build_architecture(arch_spec), source=str(arch_src))
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
