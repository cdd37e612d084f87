"""The mapspace of one layer on one architecture under constraints: which factor goes to which
slot (level x temporal / spatial-X / spatial-Y), loop orders, keep/bypass. It samples, mutates
and (when small) enumerates mappings, always as batches; it never evaluates them."""
from __future__ import annotations

import itertools
from functools import lru_cache
from math import comb, factorial, prod

import numpy as np

from .arch import Architecture
from .constraints import FREE, Constraints
from .errors import MappingError
from .mapping import MappingBatch, default_keep
from .sampling import prime_factors
from .workload import Workload

T, X, Y = 0, 1, 2


@lru_cache(maxsize=4096)
def _divisor_splits(n: int, k: int) -> tuple:
    """All ordered k-tuples of positive integers whose product is n."""
    if k == 1:
        return ((n,),)
    return tuple((d,) + rest for d in _divisors(n) for rest in _divisor_splits(n // d, k - 1))


@lru_cache(maxsize=4096)
def _divisors(n: int) -> tuple:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


@lru_cache(maxsize=64)
def _prime_table(max_value: int):
    """(primes (n, 8), count (n,)): the distinct prime factors of every v < max_value + 1."""
    n = max_value + 1
    primes = np.ones((n, 8), np.int64)
    count = np.zeros(n, np.int64)
    for v in range(2, n):
        ps = sorted(set(prime_factors(v)))
        primes[v, :len(ps)] = ps
        count[v] = len(ps)
    primes.flags.writeable = count.flags.writeable = False
    return primes, count


@lru_cache(maxsize=64)
def _largest_divisor_table(max_value: int, max_room: int) -> np.ndarray:
    """t[v, r]: the largest divisor of v that is at most r (v <= max_value, r <= max_room)."""
    v = np.arange(max_value + 1)
    t = np.ones((max_value + 1, max_room + 1), np.int64)
    for d in range(2, min(max_value, max_room) + 1):
        rows = np.flatnonzero(v % d == 0)
        t[rows, d:] = d
    t.flags.writeable = False
    return t


def _count_splits(n: int, k: int) -> int:
    """len(_divisor_splits(n, k)) in closed form: prod over prime powers p^a of C(a+k-1, k-1)."""
    primes = prime_factors(n)
    return prod(comb(primes.count(p) + k - 1, k - 1) for p in set(primes))


def _cdf(w: np.ndarray) -> np.ndarray:
    """The cumulative distribution ``Generator.choice(k, p=w / w.sum())`` builds from ``w``."""
    p = w / w.sum()
    cdf = p.cumsum()
    cdf /= cdf[-1]
    return cdf


def _choice(rng: np.random.Generator, n: int, cdf: np.ndarray) -> np.ndarray:
    """``rng.choice(len(cdf), size=n, p=p)`` for the ``cdf`` of ``p`` (:func:`_cdf`): the same
    draws (numpy's own inverse-CDF method: one ``random(n)``, then ``searchsorted``, right side)
    and the same generator state after, without re-validating ``p`` on every call
    (``tests/test_mapspace_fastpaths.py`` holds the two equal)."""
    return cdf.searchsorted(rng.random(n), side="right")


class MapSpace:
    def __init__(self, arch: Architecture, work: Workload, constraints: Constraints = FREE):
        self.arch, self.work, self.constraints = arch, work, constraints
        L, D, S = len(arch.levels), len(work.dims), len(work.dataspaces)
        self.L, self.D, self.S = L, D, S
        didx = {d: i for i, d in enumerate(work.dims)}
        self.fixed = np.ones((L, D, 3), np.int64)
        self.free = np.zeros((L, D, 3), bool)
        self.prefix = []
        self.keep_default = default_keep(arch, work)
        self.keep_free = self.keep_default.copy()
        self.keep_free[0] = False                        # the outermost level keeps everything
        for l, lv in enumerate(arch.levels):
            c = constraints.of(lv.name)
            fx, fy = arch.fanout(l)
            tfix = dict(c.temporal_factors)
            sfix = dict(c.spatial_factors)
            for d in list(tfix) + list(sfix):
                if d not in didx:
                    raise MappingError(f"constraints.{lv.name}.factors", f"unknown dimension {d!r}")
            for d, j in didx.items():
                if d in tfix:
                    self.fixed[l, j, T] = int(tfix[d])
                else:
                    self.free[l, j, T] = True
                if d in sfix:
                    f = int(sfix[d])
                    ok_x = fx > 1 and (c.spatial_x is None or d in c.spatial_x)
                    self.fixed[l, j, X if ok_x or fy == 1 else Y] = f
                else:
                    self.free[l, j, X] = fx > 1 and (c.spatial_x is None or d in c.spatial_x)
                    self.free[l, j, Y] = fy > 1 and (c.spatial_y is None or d in c.spatial_y)
            perm = [didx[d] for d in c.permutation if d in didx]
            self.prefix.append(perm)
            for s, ds in enumerate(work.dataspaces):
                if c.keep is not None:
                    self.keep_default[l, s] = ds.name in c.keep
                    self.keep_free[l, s] = False
                if ds.name in c.bypass:
                    self.keep_default[l, s] = False
                    self.keep_free[l, s] = False
        self.rest = np.zeros(D, np.int64)
        for j, d in enumerate(work.dims):
            fixed = int(np.prod(self.fixed[:, j, :]))
            if work.bounds[d] % fixed:
                raise MappingError(f"constraints.factors.{d}",
                                   f"no valid mapping: the fixed factors of {d} multiply to {fixed}, "
                                   f"which does not divide {d}={work.bounds[d]}")
            self.rest[j] = work.bounds[d] // fixed
            if self.rest[j] > 1 and not self.free[:, j, :].any():
                raise MappingError(f"constraints.factors.{d}",
                                   f"no valid mapping: {d}={work.bounds[d]} has no level left to iterate it")
        self.primes = [prime_factors(int(r)) for r in self.rest]
        # every factor a slot can take divides some dimension's remaining bound
        self.cands = sorted({d for r in self.rest for d in _divisors(int(r)) if d > 1})
        self.max_value = int(max(work.bounds.values()))
        self._prime_table()
        # fixed per space, used by every mutate / neighbors call: the free slots of each
        # dimension (as arrays and as (level, kind) tuples), the free keep choices, the free
        # temporal slots as Python booleans, and whether any factor is fixed above 1
        self._slots = [np.argwhere(self.free[:, j, :]) for j in range(D)]
        self._slot_tuples = [[(int(a), int(b)) for a, b in sl] for sl in self._slots]
        self._keep_choices = np.argwhere(self.keep_free)
        # the same as flat offsets into one row of a (L, D, 3) factor array / an (L, S) keep array
        self._flat = [sl[:, 0] * (D * 3) + j * 3 + sl[:, 1] for j, sl in enumerate(self._slots)]
        self._keep_flat = self._keep_choices[:, 0] * self.keep_free.shape[1] + self._keep_choices[:, 1]
        self._free_t = self.free[..., T].tolist()
        self._fixed_one = bool((self.fixed == 1).all())
        self._cdfs = {}                              # sampling weights per (kind, bias): see _choice

    # ------------------------------------------------------------------ helpers
    def _prime_table(self):
        self.pt_primes, self.pt_count = _prime_table(self.max_value)

    def _perm_rows(self, rng, n) -> np.ndarray:
        """(n, L, D) loop orders: the constrained innermost prefix, the rest shuffled above it."""
        perm = np.empty((n, self.L, self.D), np.int64)
        for l in range(self.L):
            pre = self.prefix[l]
            rest = np.array([j for j in range(self.D) if j not in pre], np.int64)
            shuffled = rest[np.argsort(rng.random((n, len(rest))), axis=1)]
            perm[:, l, :len(pre)] = pre
            perm[:, l, len(pre):] = shuffled
        return perm

    def _assemble(self, vals, perm, keep) -> MappingBatch:
        v = vals if self._fixed_one else vals * self.fixed[None]
        return MappingBatch(v[..., T].copy(), v[..., X].copy(), v[..., Y].copy(), perm, keep)

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int, rng: np.random.Generator, outer_bias: float = 1.0,
               spatial_weight: float = 2.0, keep_prob: float = 0.85, coherent: float = 0.5) -> MappingBatch:
        """Random mappings: every prime factor of every dimension to a random free slot (outer
        levels and spatial slots favoured), random loop orders, random bypass of free choices."""
        L, D = self.L, self.D
        vals = np.ones((n, L, D, 3), np.int64)
        rows = np.arange(n)
        key = ("sample", outer_bias, spatial_weight)
        if key not in self._cdfs:
            level_w = np.exp(-outer_bias * np.arange(L))
            self._cdfs[key] = [None if len(sl) == 0 else
                               _cdf(level_w[sl[:, 0]] * np.where(sl[:, 1] == T, 1.0, spatial_weight))
                               for sl in self._slots]
        for j in range(D):
            slots, cdf = self._slots[j], self._cdfs[key][j]
            if cdf is None:
                continue
            # half of the rows keep a dimension whole in one slot (coherent tilings: the
            # optimum often iterates a dimension at one level only), half scatter its primes
            whole = rng.random(n) < coherent
            one = _choice(rng, n, cdf)
            for p in self.primes[j]:
                pick = np.where(whole, one, _choice(rng, n, cdf))
                vals[rows, slots[pick, 0], j, slots[pick, 1]] *= p
        keep = np.tile(self.keep_default, (n, 1, 1))
        flip = (rng.random(keep.shape) > keep_prob) & self.keep_free[None]
        keep &= ~flip
        return self._assemble(vals, self._perm_rows(rng, n), keep)

    def sample_filled(self, n: int, rng: np.random.Generator, outer_bias: float = 1.0,
                      keep_prob: float = 0.85) -> MappingBatch:
        """Random mappings that first fill each level's PE-array fan-out: the allowed dimensions
        are visited in random order and each takes a random large divisor of what is left of it
        that still fits the array; the remaining factors go to temporal slots as in sample()."""
        L, D = self.L, self.D
        vals = np.ones((n, L, D, 3), np.int64)
        left = np.tile(self.rest, (n, 1))
        for l in range(L):
            fx, fy = self.arch.fanout(l)
            for kind, fan in ((X, fx), (Y, fy)):
                dims = [j for j in range(D) if self.free[l, j, kind]]
                if fan <= 1 or not dims:
                    continue
                room = np.full(n, fan // int(np.prod(self.fixed[l, :, kind])), np.int64)
                order = np.argsort(rng.random((n, len(dims))), axis=1)
                big = _largest_divisor_table(self.max_value, max(int(room.max()), 1))
                for k in range(len(dims)):
                    j = np.array(dims)[order[:, k]]
                    r = np.arange(n)
                    lj = left[r, j]
                    # largest divisor of lj that fits in room, then sometimes a smaller one
                    f = big[lj, room]
                    shrink = rng.random(n) < 0.3
                    f = np.where(shrink & (f > 1), f // self.pt_primes[f, 0], f)
                    vals[r, l, j, kind] *= f
                    left[r, j] //= f
                    room //= f
        key = ("filled", outer_bias)
        if key not in self._cdfs:
            level_w = np.exp(-outer_bias * np.arange(L))
            slots_t = [np.argwhere(self.free[:, j, :] & (np.arange(3) == T)[None, :]) for j in range(D)]
            self._cdfs[key] = [(sl, None if len(sl) == 0 else _cdf(level_w[sl[:, 0]]))
                               for sl in slots_t]
        for j in range(D):
            slots, cdf = self._cdfs[key][j]
            if cdf is None:
                continue
            for p in sorted(set(self.primes[j])):
                for _ in range(self.primes[j].count(p)):
                    has = left[:, j] % p == 0
                    pick = _choice(rng, n, cdf)
                    rr = np.nonzero(has)[0]
                    vals[rr, slots[pick[rr], 0], j, T] *= p
                    left[rr, j] //= p
        keep = np.tile(self.keep_default, (n, 1, 1))
        keep &= ~((rng.random(keep.shape) > keep_prob) & self.keep_free[None])
        return self._assemble(vals, self._perm_rows(rng, n), keep)

    # ------------------------------------------------------------------ mutation
    def values(self, batch: MappingBatch) -> np.ndarray:
        """(B, L, D, 3) free-slot factors (fixed ones divided out)."""
        v = np.stack([batch.tf, batch.sx, batch.sy], axis=-1)
        return v if self._fixed_one else v // self.fixed[None]

    def mutate(self, batch: MappingBatch, rng: np.random.Generator, moves: int = 1) -> MappingBatch:
        """Children of ``batch`` (one per row): each makes ``moves`` random moves: move a prime
        factor to another slot, swap two free loops of a level, or flip a free keep/bypass.
        (The arrays are addressed through flat indices, one per (row, slot): the same draws, in
        the same order, and the same children as indexing them by (row, level, dimension, kind).)"""
        n = len(batch)
        L, D = self.L, self.D
        vals = np.ascontiguousarray(self.values(batch))
        perm = batch.perm.copy()
        keep = batch.keep.copy()
        vf, pf, kf = vals.reshape(-1), perm.reshape(-1), keep.reshape(-1)
        rows = np.arange(n)
        has_keep = self.keep_free.any()
        fs, kflat = self._flat, self._keep_flat
        for _ in range(moves):
            kind = rng.random(n)
            fmove = kind < (0.6 if has_keep else 0.65)
            pswap = ~fmove & (kind < (0.9 if has_keep else 1.0))
            kflip = ~fmove & ~pswap
            # factor moves, one dimension at a time
            dims = rng.integers(0, D, n)
            fm_rows = rows[fmove]
            fm_dims = dims[fmove]
            for j in range(D):
                slots = fs[j]
                k = len(slots)
                if k < 2 or self.rest[j] == 1:
                    continue
                r = fm_rows[fm_dims == j]
                m = len(r)
                if m == 0:
                    continue
                base = r * (L * D * 3)
                cur = vf.take(base[:, None] + slots)                              # (m, k)
                score = rng.random(cur.shape) * (cur > 1)
                src = np.argmax(score, axis=1)
                sv = cur.take(np.arange(m) * k + src)
                ok = sv > 1
                base, src, sv = base[ok], src[ok], sv[ok]
                q = self.pt_primes[sv, (rng.random(len(sv)) * self.pt_count[sv]).astype(np.int64)]
                q = np.where(rng.random(len(sv)) < 0.25, sv, q)           # sometimes move it all
                dst = (src + 1 + rng.integers(0, k - 1, len(sv))) % k
                i_src, i_dst = base + slots[src], base + slots[dst]
                vf[i_src] //= q
                vf[i_dst] *= q
            # loop-order swaps within one level (outside the constrained prefix)
            lvl = rng.integers(0, L, n)
            for l in range(L):
                lo = len(self.prefix[l])
                r = rows[pswap & (lvl == l)]
                if D - lo < 2 or len(r) == 0:
                    continue
                a = rng.integers(lo, D, len(r))
                b = lo + (a - lo + 1 + rng.integers(0, D - lo - 1, len(r))) % (D - lo)
                base = r * (L * D) + l * D
                ia, ib = base + a, base + b
                pa, pb = pf[ia], pf[ib]
                pf[ia], pf[ib] = pb, pa
            # keep / bypass flips
            if has_keep:
                r = rows[kflip]
                c = kflat[rng.integers(0, len(kflat), len(r))]
                kf[r * keep.shape[1] * keep.shape[2] + c] ^= True
        return self._assemble(vals, perm, keep)

    def neighbors(self, one: MappingBatch, max_orders: int = 720) -> MappingBatch:
        """Every mapping one move away from ``one`` (a batch of one): each prime factor of each
        free slot moved to each other free slot of its dimension, every order of each level's
        non-trivial free loops (up to ``max_orders`` per level), every free keep flipped.
        (The moves are listed in Python on plain ints, then applied to copies of ``one`` in a
        few array operations; the order of the result is the order of the list.)"""
        vals = self.values(one)[0]
        perm, keep = one.perm[0], one.keep[0]
        V = vals.tolist()
        L, D = self.L, self.D
        moves = []                                   # (level a, kind a, level b, kind b, dim, q)
        for j in range(D):
            slots = self._slot_tuples[j]
            for a in slots:
                v = V[a[0]][j][a[1]]
                qs = sorted(set(prime_factors(v))) if v > 1 else []
                if v > 1 and v not in qs:
                    qs.append(v)                                   # the whole factor at once
                for q in qs:
                    for b in slots:
                        if b != a:
                            moves.append((a[0], a[1], b[0], b[1], j, q))
        # exchanges: a prime of one dimension goes out of a level's temporal loops while a prime of
        # another comes in (keeps the tile size roughly constant where capacity binds)
        ft = self._free_t
        swaps = []                                   # (l1, l2, a, b, q, r)
        for l1 in range(L):
            for l2 in range(L):
                if l1 == l2:
                    continue
                for a in range(D):
                    if not (ft[l1][a] and ft[l2][a]) or V[l1][a][T] == 1:
                        continue
                    for b in range(D):
                        if b == a or not (ft[l1][b] and ft[l2][b]) or V[l2][b][T] == 1:
                            continue
                        for q in sorted(set(prime_factors(V[l1][a][T]))):
                            for r in sorted(set(prime_factors(V[l2][b][T]))):
                                swaps.append((l1, l2, a, b, q, r))
        tf = vals[..., T] * self.fixed[..., T]
        orders = []                                  # (level, positions, array of orders)
        for l in range(L):
            lo = len(self.prefix[l])
            nontriv = [pos for pos in range(lo, D) if tf[l, perm[l, pos]] > 1]
            if len(nontriv) < 2:
                continue
            dims = [int(perm[l, pos]) for pos in nontriv]
            # the first max_orders permutations, less the identity (always the first one)
            got = list(itertools.islice(itertools.permutations(dims), max_orders))[1:]
            if got:
                orders.append((l, nontriv, np.array(got, np.int64)))
        flips = self._keep_choices
        n1, n2 = len(moves), len(swaps)
        n3 = sum(len(o[2]) for o in orders)
        n = n1 + n2 + n3 + len(flips)
        if n == 0:
            return one
        out_v = np.repeat(vals[None], n, axis=0)
        out_p = np.repeat(perm[None], n, axis=0)
        out_k = np.repeat(keep[None], n, axis=0)
        if n1:
            m = np.array(moves, np.int64)
            i = np.arange(n1)
            out_v[i, m[:, 0], m[:, 4], m[:, 1]] //= m[:, 5]
            out_v[i, m[:, 2], m[:, 4], m[:, 3]] *= m[:, 5]
        if n2:
            w = np.array(swaps, np.int64)
            i = np.arange(n1, n1 + n2)
            out_v[i, w[:, 0], w[:, 2], T] //= w[:, 4]
            out_v[i, w[:, 1], w[:, 2], T] *= w[:, 4]
            out_v[i, w[:, 1], w[:, 3], T] //= w[:, 5]
            out_v[i, w[:, 0], w[:, 3], T] *= w[:, 5]
        at = n1 + n2
        for l, pos, got in orders:
            out_p[at:at + len(got), l, pos] = got
            at += len(got)
        if len(flips):
            i = np.arange(at, n)
            out_k[i, flips[:, 0], flips[:, 1]] = ~keep[flips[:, 0], flips[:, 1]]
        return self._assemble(out_v, out_p, out_k)

    # ------------------------------------------------------------------ enumeration
    def _factor_choices(self):
        per_dim = []
        for j in range(self.D):
            slots = [tuple(s) for s in np.argwhere(self.free[:, j, :])]
            per_dim.append((slots, list(_divisor_splits(int(self.rest[j]), len(slots))) if slots else [()]))
        return per_dim

    def _spatial_ok(self, assign) -> bool:
        for l in range(self.L):
            fx, fy = self.arch.fanout(l)
            px = prod(int(self.fixed[l, j, X]) for j in range(self.D))
            py = prod(int(self.fixed[l, j, Y]) for j in range(self.D))
            for j, (slots, split) in enumerate(assign):
                for (sl, kind), f in zip(slots, split):
                    if sl == l and kind == X:
                        px *= f
                    elif sl == l and kind == Y:
                        py *= f
            if px > fx or py > fy:
                return False
        return True

    def size(self, limit: int | None = None) -> int:
        """Number of mappings in the (pruned) space: factor splits within the fan-out, times the
        orders of each level's non-trivial free loops, times free keep choices. Counting stops
        once it passes ``limit``."""
        keeps = 2 ** int(self.keep_free.sum())
        bound = prod(_count_splits(int(self.rest[j]), int(self.free[:, j, :].sum())) if self.free[:, j, :].any()
                     else 1 for j in range(self.D)) * keeps
        if limit is not None and bound > 50 * limit:
            return bound            # far too many factor splits to walk: not enumerable
        total = 0
        for assign in self._assignments():
            total += self._orders(assign) * keeps
            if limit is not None and total > limit:
                return total
        return total

    def _assignments(self):
        per_dim = self._factor_choices()
        for splits in itertools.product(*[c[1] for c in per_dim]):
            assign = [(per_dim[j][0], splits[j]) for j in range(self.D)]
            if self._spatial_ok(assign):
                yield assign

    def _temporal(self, assign) -> np.ndarray:
        tf = self.fixed[..., T].copy()
        for j, (slots, split) in enumerate(assign):
            for (sl, kind), f in zip(slots, split):
                if kind == T:
                    tf[sl, j] *= f
        return tf

    def _orders(self, assign) -> int:
        tf = self._temporal(assign)
        n = 1
        for l in range(self.L):
            free_nontrivial = [j for j in range(self.D) if j not in self.prefix[l] and tf[l, j] > 1]
            n *= factorial(len(free_nontrivial))
        return n

    def enumerate(self, chunk: int = 8192):
        """Yield every mapping of the space in batches (orders of trivial loops are not
        distinguished: they do not change any count)."""
        keep_opts = [np.array(k, bool) for k in itertools.product([False, True], repeat=int(self.keep_free.sum()))]
        free_idx = np.argwhere(self.keep_free)
        buf = []
        for assign in self._assignments():
            vals = np.ones((self.L, self.D, 3), np.int64)
            for j, (slots, split) in enumerate(assign):
                for (sl, kind), f in zip(slots, split):
                    vals[sl, j, kind] *= f
            tf = vals[..., T] * self.fixed[..., T]
            level_orders = []
            for l in range(self.L):
                pre = list(self.prefix[l])
                nontriv = [j for j in range(self.D) if j not in pre and tf[l, j] > 1]
                triv = [j for j in range(self.D) if j not in pre and tf[l, j] <= 1]
                level_orders.append([pre + triv + list(o) for o in itertools.permutations(nontriv)])
            for orders in itertools.product(*level_orders):
                for ko in keep_opts:
                    keep = self.keep_default.copy()
                    if len(free_idx):
                        keep[free_idx[:, 0], free_idx[:, 1]] = ko
                    buf.append((vals, np.array(orders, np.int64), keep))
                    if len(buf) == chunk:
                        yield self._pack(buf)
                        buf = []
        if buf:
            yield self._pack(buf)

    def _pack(self, buf) -> MappingBatch:
        vals = np.stack([b[0] for b in buf])
        perm = np.stack([b[1] for b in buf])
        keep = np.stack([b[2] for b in buf])
        return self._assemble(vals, perm, keep)

    def minimal(self) -> MappingBatch:
        """The mapping with the smallest tiles: every free factor at the outermost level."""
        vals = np.ones((1, self.L, self.D, 3), np.int64)
        for j in range(self.D):
            slots = np.argwhere(self.free[:, j, :])
            if len(slots):
                l, k = slots[0]
                vals[0, l, j, k] = self.rest[j]
        perm = self._perm_rows(np.random.default_rng(0), 1)
        keep = self.keep_default[None].copy()
        return self._assemble(vals, perm, keep)
