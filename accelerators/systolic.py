"""Pipeline fill and drain of a weight-stationary systolic array: an optional term on top of the
cost model (which, like Timeloop, counts only the cycles in which the MACs compute).

The term follows SCALE-Sim's weight-stationary model (scalesim 3.0.0,
``scalesim/compute/systolic_compute_ws.py``, class ``systolic_compute_ws``). SCALE-Sim unrolls the
reduction ``Sr = C*R*S`` over the ``rows`` of the array and the filters ``Sc = K`` over its
``cols``, and runs one *fold* per weight tile: ``ceil(Sr/rows) * ceil(Sc/cols)`` folds, each
streaming all ``T = N*P*Q`` output pixels through the stationary weights. Its demand matrices give
every fold the same length, whatever part of the array the fold uses:

* ``create_filter_demand_mat``: ``rows`` cycles to load the weights (one array row per cycle),
  then ``rows + cols + T - 2`` cycles in which the inputs stream and the partial sums drain;
* ``create_ifmap_demand_mat``: a prefix of ``rows`` (the weight load), the ``T`` inputs, a suffix
  of ``cols - 1`` (the drain), skewed by ``skew_matrix`` over the ``rows`` inputs (``rows - 1``);
* ``create_ofmap_demand_mat``: a prefix of ``2 * rows - 1`` (weight load, then the partial sums
  passing down the rows), the ``T`` outputs, skewed by ``skew_matrix`` over the ``cols``
  (``cols - 1``).

All three come to ``T + 2 * rows + cols - 2`` cycles per fold, so SCALE-Sim's compute cycles are
``folds * (T + 2 * rows + cols - 2)``, of which ``folds * T`` are the cycles our model counts and

    fill_drain = folds * (2 * rows + cols - 2)
               = folds * (rows            weight load
                          + rows - 1      inputs skewed into the rows / partial sums down the rows
                          + cols - 1)     outputs skewed out across the columns

is what it adds. (SCALE-Sim reports the 0-based index of the last cycle, one less than this
count; ``double_buffered_scratchpad.service_memory_requests``.) SCALE-Sim does not overlap one
fold's weight load with the previous fold's stream, and neither does this term.

Here ``folds`` is the number of weight tiles the mapping loads into the array: the product of the
temporal loops above the array (the levels down to the one whose fan-out is the array), outermost
first, down to and including the innermost loop that indexes the weights. With the
weight-stationary mapping SCALE-Sim runs (every weight loop above every output-pixel loop) that is
its fold count; a mapping that puts an output-pixel loop above a weight loop reloads the weights
more often and pays the fill and drain more often. ``rows`` is the mesh axis that carries the
reduction dimensions (meshX in our weight-stationary constraints, which put C, R, S on meshX and
K on meshY); like SCALE-Sim, the whole physical array fills and drains, used or not.

The model itself is unchanged (Timeloop agreement stays exact); these are pure functions of the
architecture, the workload, the mapping and an evaluation.
"""
from __future__ import annotations

from math import prod

from .arch import Architecture
from .mapping import Mapping
from .model import Evaluation
from .workload import Workload


def array_level(arch: Architecture) -> int:
    """Index of the level whose fan-out is the PE array: the innermost level with a fan-out. With
    none (a single MAC) the level above the innermost one, the PE's own storage."""
    fanning = [l for l in range(len(arch.levels)) if arch.fanout(l) != (1, 1)]
    return fanning[-1] if fanning else len(arch.levels) - 2


def array_rows_cols(arch: Architecture, work: Workload, mapping: Mapping) -> tuple[int, int]:
    """(rows, cols) of the systolic array in SCALE-Sim's sense: ``rows`` is the mesh axis over
    which the reduction (partial sums) runs. That is meshX unless the mapping unrolls reduction
    dimensions on meshY only."""
    s = array_level(arch)
    if s < 0:
        return 1, 1
    fx, fy = arch.fanout(s)               # (1, 1) for a single MAC
    out_dims = set().union(*[ds.dims() for ds in work.dataspaces if ds.read_write])
    reduction = set(work.dims) - out_dims
    lm = mapping.levels[s]
    on_x = any(int(f) > 1 and d in reduction for d, f in lm.spatial_x.items())
    on_y = any(int(f) > 1 and d in reduction for d, f in lm.spatial_y.items())
    return (fy, fx) if on_y and not on_x else (fx, fy)


def weight_folds(arch: Architecture, work: Workload, mapping: Mapping) -> int:
    """Number of weight tiles loaded into the array: the product of the temporal loops of the
    levels above it (outermost first) down to the innermost one that indexes the weights."""
    weight_dims = set().union(*[ds.dims() for ds in work.dataspaces if ds.role == "weights"])
    loops = []                                             # (dimension, factor), outermost first
    for lm in mapping.levels[:array_level(arch) + 1]:
        # the level's loop order, innermost first, completed as to_batch does: dimensions the
        # permutation leaves out are the innermost loops
        order = [d for d in lm.permutation if d in work.dims]
        order = [d for d in work.dims if d not in order] + order
        for d in reversed(order):
            if lm.t(d) > 1:
                loops.append((d, lm.t(d)))
    last = max((i for i, (d, _) in enumerate(loops) if d in weight_dims), default=-1)
    return prod(f for _, f in loops[:last + 1])


def fill_drain_cycles(arch: Architecture, work: Workload, mapping: Mapping) -> int:
    """Cycles SCALE-Sim's weight-stationary array spends loading weights and filling and
    draining the pipeline: ``folds * (2 * rows + cols - 2)`` (see the module docstring)."""
    rows, cols = array_rows_cols(arch, work, mapping)
    return weight_folds(arch, work, mapping) * (2 * rows + cols - 2)


def cycles_with_fill_drain(evaluation: Evaluation, arch: Architecture, work: Workload,
                           mapping: Mapping) -> int:
    """The evaluation's cycles with the fill/drain term: the compute cycles plus fill and drain,
    or the bandwidth-bound cycles if those are still longer (the array's bubbles overlap the
    transfers a bandwidth-bound level is waiting on)."""
    return max(int(evaluation.cycles),
               int(evaluation.compute_cycles) + fill_drain_cycles(arch, work, mapping))
