"""The mapspace's fast paths against what they replaced. MapSpace.neighbors lists its moves on
plain ints and applies them in a few array operations: held equal, row for row and in order, to
the plain one-copy-per-neighbour loop (kept here as the reference), on sampled mappings of real
layers on several templates and dataflows (fixed factors, constrained loop orders and free bypass
choices included). The mapper's distinct-row index equals ``np.unique``'s. The samplers draw slots with a cached inverse CDF: held equal to numpy's own
``Generator.choice(k, size=n, p=p)``, draws and generator state after."""
import itertools

import numpy as np
import pytest

from accelerators.constraints import dataflow_constraints
from accelerators.mapspace import MapSpace, T, _cdf, _choice
from accelerators.network import load_layers
from accelerators.sampling import prime_factors
from accelerators.spec import load_architecture
from conftest import REPO


def neighbors_loop(space, one, max_orders=720):
    """The former implementation: one copy of the factor array per neighbour, in this order."""
    vals = space.values(one)[0]
    perm, keep = one.perm[0], one.keep[0]
    out_v, out_p, out_k = [], [], []
    for j in range(space.D):
        slots = [tuple(x) for x in np.argwhere(space.free[:, j, :])]
        for a in slots:
            v = int(vals[a[0], j, a[1]])
            qs = sorted(set(prime_factors(v))) if v > 1 else []
            if v > 1 and v not in qs:
                qs.append(v)
            for q in qs:
                for b in slots:
                    if b == a:
                        continue
                    nv = vals.copy()
                    nv[a[0], j, a[1]] //= q
                    nv[b[0], j, b[1]] *= q
                    out_v.append(nv), out_p.append(perm), out_k.append(keep)
    for l1 in range(space.L):
        for l2 in range(space.L):
            if l1 == l2:
                continue
            for a in range(space.D):
                if not (space.free[l1, a, T] and space.free[l2, a, T]) or vals[l1, a, T] == 1:
                    continue
                for b in range(space.D):
                    if b == a or not (space.free[l1, b, T] and space.free[l2, b, T]) or vals[l2, b, T] == 1:
                        continue
                    for q in sorted(set(prime_factors(int(vals[l1, a, T])))):
                        for r in sorted(set(prime_factors(int(vals[l2, b, T])))):
                            nv = vals.copy()
                            nv[l1, a, T] //= q
                            nv[l2, a, T] *= q
                            nv[l2, b, T] //= r
                            nv[l1, b, T] *= r
                            out_v.append(nv), out_p.append(perm), out_k.append(keep)
    tf = vals[..., T] * space.fixed[..., T]
    for l in range(space.L):
        lo = len(space.prefix[l])
        nontriv = [pos for pos in range(lo, space.D) if tf[l, perm[l, pos]] > 1]
        if len(nontriv) < 2:
            continue
        dims = [perm[l, pos] for pos in nontriv]
        for k, order in enumerate(itertools.permutations(dims)):
            if k >= max_orders:
                break
            if list(order) == dims:
                continue
            np_ = perm.copy()
            np_[l, nontriv] = order
            out_v.append(vals), out_p.append(np_), out_k.append(keep)
    for l, s_ in np.argwhere(space.keep_free):
        nk = keep.copy()
        nk[l, s_] = not nk[l, s_]
        out_v.append(vals), out_p.append(perm), out_k.append(nk)
    if not out_v:
        return one
    return space._assemble(np.stack(out_v), np.stack(out_p), np.stack(out_k))


@pytest.mark.parametrize("template,dataflow", [("eyeriss_like", None), ("eyeriss_like", "weight-stationary"),
                                               ("eyeriss_like", "output-stationary"), ("tpu_like", None),
                                               ("simba_like", None)])
def test_neighbors_equal_the_one_copy_per_neighbour_loop(template, dataflow):
    arch = load_architecture(template)
    layers = load_layers(REPO / "specs/workloads/mobilenet_v3_large.yaml")
    works = list({l.work.key(): l.work for l in layers}.values())[:8]
    rng = np.random.default_rng(5)
    checked = 0
    for w in works:
        space = MapSpace(arch, w, dataflow_constraints(arch, w, dataflow))
        batch = space.sample_filled(6, rng)
        for i in range(len(batch)):
            for max_orders in (720, 5):
                got, want = space.neighbors(batch[i:i + 1], max_orders), neighbors_loop(space, batch[i:i + 1], max_orders)
                for f in ("tf", "sx", "sy", "perm", "keep"):
                    a, b = getattr(got, f), getattr(want, f)
                    assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all(), (w.name, i, f)
                checked += len(got)
    assert checked > 1000


def mutate_reference(space, batch, rng, moves=1):
    """The former ``MapSpace.mutate``: (row, level, dimension, kind) fancy indexing."""
    n = len(batch)
    vals = space.values(batch)
    perm = batch.perm.copy()
    keep = batch.keep.copy()
    rows = np.arange(n)
    has_keep = space.keep_free.any()
    for _ in range(moves):
        kind = rng.random(n)
        fmove = kind < (0.6 if has_keep else 0.65)
        pswap = ~fmove & (kind < (0.9 if has_keep else 1.0))
        kflip = ~fmove & ~pswap
        # factor moves, one dimension at a time
        dims = rng.integers(0, space.D, n)
        for j in range(space.D):
            slots = space._slots[j]
            if len(slots) < 2 or space.rest[j] == 1:
                continue
            r = rows[fmove & (dims == j)]
            if len(r) == 0:
                continue
            cur = vals[r[:, None], slots[:, 0], j, slots[:, 1]]                # (m, k)
            score = rng.random(cur.shape) * (cur > 1)
            src = np.argmax(score, axis=1)
            sv = cur[np.arange(len(r)), src]
            ok = sv > 1
            r, src, sv = r[ok], src[ok], sv[ok]
            q = space.pt_primes[sv, (rng.random(len(r)) * space.pt_count[sv]).astype(np.int64)]
            q = np.where(rng.random(len(r)) < 0.25, sv, q)           # sometimes move it all
            dst = (src + 1 + rng.integers(0, len(slots) - 1, len(r))) % len(slots)
            vals[r, slots[src, 0], j, slots[src, 1]] //= q
            vals[r, slots[dst, 0], j, slots[dst, 1]] *= q
        # loop-order swaps within one level (outside the constrained prefix)
        lvl = rng.integers(0, space.L, n)
        for l in range(space.L):
            lo = len(space.prefix[l])
            r = rows[pswap & (lvl == l)]
            if space.D - lo < 2 or len(r) == 0:
                continue
            a = rng.integers(lo, space.D, len(r))
            b = lo + (a - lo + 1 + rng.integers(0, space.D - lo - 1, len(r))) % (space.D - lo)
            pa, pb = perm[r, l, a].copy(), perm[r, l, b].copy()
            perm[r, l, a], perm[r, l, b] = pb, pa
        # keep / bypass flips
        if has_keep:
            choices = space._keep_choices
            r = rows[kflip]
            c = choices[rng.integers(0, len(choices), len(r))]
            keep[r, c[:, 0], c[:, 1]] ^= True
    return space._assemble(vals, perm, keep)


@pytest.mark.parametrize("template", ["eyeriss_like", "tpu_like", "simba_like"])
def test_mutate_equals_the_fancy_indexing_one(template):
    """MapSpace.mutate addresses its arrays through flat indices: the same children, draws and
    generator state as the former (row, level, dimension, kind) indexing, with and without the
    dataflow constraints, 1 to 3 moves."""
    from accelerators.constraints import FREE
    arch = load_architecture(template)
    for layer in load_layers(REPO / "specs/workloads/mobilenet_v3_large.yaml", expand=False)[:12:3]:
        for cons in (dataflow_constraints(arch, layer.work), FREE):
            sp = MapSpace(arch, layer.work, cons)
            b = sp.sample(300, np.random.default_rng(1))
            for moves in (1, 2, 3):
                r1, r2 = np.random.default_rng(moves), np.random.default_rng(moves)
                got, want = sp.mutate(b, r1, moves), mutate_reference(sp, b, r2, moves)
                for k in ("tf", "sx", "sy", "perm", "keep"):
                    assert np.array_equal(getattr(got, k), getattr(want, k)), (layer.name, k)
                assert r1.random() == r2.random()


def test_cached_cdf_draws_equal_generator_choice():
    for seed in range(300):
        g = np.random.default_rng(seed + 10_000)
        k, n = int(g.integers(1, 12)), int(g.integers(0, 400))
        w = g.random(k) * (g.random(k) < 0.8) + 1e-3 * g.random(k)      # uneven, some tiny weights
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        want = a.choice(k, size=n, p=w / w.sum())
        got = _choice(b, n, _cdf(w))
        assert got.dtype == want.dtype and (got == want).all()
        assert (a.random(4) == b.random(4)).all()                    # the same state after


def test_first_distinct_keys_equal_numpy_unique():
    from accelerators.mapper import _first_distinct, _rows_key
    arch = load_architecture("eyeriss_like")
    w = load_layers(REPO / "specs/workloads/mobilenet_v3_large.yaml")[3].work
    space = MapSpace(arch, w, dataflow_constraints(arch, w))
    rng = np.random.default_rng(2)
    for _ in range(20):
        b = space.sample(int(rng.integers(1, 300)), rng)
        b = b[rng.integers(0, len(b), len(b) + 50)]                    # many repeated rows
        keys = _rows_key(b)
        assert (_first_distinct(keys) == np.unique(keys, return_index=True)[1]).all()
