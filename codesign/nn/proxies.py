"""Zero-shot accuracy proxies of a subnet: statistics of the network on one small, shared batch of
validation images, with no training, computed either on a freshly initialized copy (seeded) or
on the trained supernet's subnet (the shared weights, at zero training cost once the supernet
exists).

Every proxy is one small function of ``(model, x, y)`` (some need only ``x`` or the input shape)
returning a float; :data:`PROXIES` lists them with their orientation (``score = sign * value``:
higher score = predicted more accurate). BatchNorm runs on batch statistics (train mode), as in
the papers' code (Abdelfattah et al.'s ``zero-cost-nas``), and every function works on its own
copy of the model, so none changes the caller's weights.

* linear regions / activation codes: NASWOT (Mellor et al. ICML 2021), the TE-NAS count of
  linear regions (Chen et al. ICLR 2021);
* Jacobian: jacob_cov (Mellor et al. 2020, v1 of NASWOT), the NTK condition number (TE-NAS),
  ZiCo (Li et al. ICLR 2023);
* Hessian: GraSP (Wang et al. ICLR 2020);
* saliency: SNIP (Lee et al. ICLR 2019), Fisher (Theis et al. 2018 / Turner et al. ICLR 2020),
  grad_norm (Abdelfattah et al. ICLR 2021), SynFlow (Tanaka et al. NeurIPS 2020);
* capacity: Zen-score (Lin et al. ICCV 2021);
* baselines: #params and MACs.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from codesign.space.genome import DEFAULT_SPACE
from codesign.space.layers import genome_macs
from codesign.nn.supernet import Supernet, resize
from codesign.nn.transforms import normalize

_RECT = (nn.ReLU, nn.Hardswish)


def fresh_subnet(genome: dict, seed: int = 0, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return Supernet(num_classes).subnet(DEFAULT_SPACE.validate(genome))


def _params(model):
    return [p for p in model.parameters() if p.requires_grad]


def _weights(model):
    """The weights the saliency proxies sum over: those of convolutions and linear layers (as in
    Abdelfattah et al.'s code)."""
    return [m.weight for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _loss_grads(model, x, y, params=None):
    model.train()
    model.zero_grad()
    loss = F.cross_entropy(model(x), y)
    params = params if params is not None else _weights(model)
    return params, torch.autograd.grad(loss, params, allow_unused=True)


def _codes(model, x, pieces: bool = False, train: bool = True):
    """Binary activation code of every rectifier over the batch (N, units): input > 0. ``pieces``
    also codes Hardswish's knees at -3 and 3, so the code identifies the piece."""
    codes = []

    def hook(m, inp):
        z = inp[0].flatten(1)
        codes.append((z > 0).to(torch.uint8))
        if pieces and isinstance(m, nn.Hardswish):
            codes.append((z > -3.0).to(torch.uint8))
            codes.append((z >= 3.0).to(torch.uint8))
    hs = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, _RECT)]
    try:
        model.train(train)
        with torch.no_grad():
            model(x)
    finally:
        for h in hs:
            h.remove()
    return torch.cat(codes, 1)


# ---- activation codes -------------------------------------------------------------------------

@torch.no_grad()
def naswot(model: nn.Module, x: torch.Tensor) -> float:
    """NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021):
    log|det K| with K[i, j] the number of rectifying units on which images i and j agree (both
    active or both inactive); high when the network separates the images' activation codes."""
    c = _codes(model, x).double()
    k = c @ c.T + (1 - c) @ (1 - c).T
    return float(torch.linalg.slogdet(k)[1])


@torch.no_grad()
def linear_regions(model: nn.Module, x: torch.Tensor, points: int = 16, span: float = 1.0) -> float:
    """TE-NAS's expressivity measure (Chen et al., "Neural Architecture Search on ImageNet in
    Four GPU Hours: A Theoretically Inspired Perspective", ICLR 2021): the number of linear
    regions of the network, counted as distinct activation patterns (ReLU on/off, Hardswish's
    piece) of a set of inputs. The inputs are ``points`` evenly spaced points on each segment
    between consecutive images of ``x``; a line meets each (convex) linear region in one
    interval, so the count per segment is the number of regions the segment crosses (at the
    grid's resolution). BatchNorm uses its running statistics here (batch statistics of points
    on one short segment would magnify their differences); a fresh network's are the identity.
    ``span`` shortens each segment to that fraction of the way to the next image, so that the
    count does not saturate at ``points``. Returns the mean count per segment."""
    model = copy.deepcopy(model)
    t = torch.linspace(0, 1, points, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))
    counts = []
    for a, b in zip(x[:-1], x[1:]):
        b = a + span * (b - a)
        c = _codes(model, a + t * (b - a), pieces=True, train=False)
        counts.append(len(torch.unique(c, dim=0)))
    return float(np.mean(counts))


# ---- Jacobian ----------------------------------------------------------------------------------

def input_jacobians(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, D): d(sum of the outputs of image i)/d(image i), one row per image."""
    model = copy.deepcopy(model).train()
    x = x.clone().requires_grad_(True)
    model(x).sum().backward()
    return x.grad.flatten(1).detach()


def jacob_cov(model: nn.Module, x: torch.Tensor, y=None) -> float:
    """jacob_cov (Mellor et al., "Neural Architecture Search without Training", arXiv v1, 2020):
    -sum(log(l + k) + 1/(l + k)), l the eigenvalues of the correlation matrix of the input
    Jacobians of the images of the batch (k = 1e-5); high when the Jacobians of different images
    are decorrelated, i.e. the network treats the images differently."""
    j = input_jacobians(model, x).double().numpy()
    corr = np.corrcoef(j)
    lam = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(np.maximum(lam, 0) + k) + 1.0 / (np.maximum(lam, 0) + k)))


def ntk_gram(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(N, N) empirical neural tangent kernel: <d f(x_i)/d theta, d f(x_j)/d theta>, f the sum of
    the logits (as TE-NAS); one backward pass per image, BN on the batch's statistics."""
    model = copy.deepcopy(model).train()
    params = _params(model)
    grads = []
    for i in range(len(x)):
        out = model(x)
        g = torch.autograd.grad(out[i].sum(), params, allow_unused=True)
        grads.append(torch.cat([t.flatten() for t in g if t is not None]).double())
    j = torch.stack(grads)
    return j @ j.T


def ntk_cond(model: nn.Module, x: torch.Tensor, y=None) -> float:
    """The NTK condition number of TE-NAS (Chen et al. ICLR 2021): lambda_max / lambda_min of the
    empirical NTK on the batch; a small condition number predicts trainability (TE-NAS ranks by
    its negative). Kept affordable by a small batch (one backward per image)."""
    lam = torch.linalg.eigvalsh(ntk_gram(model, x))
    return float(lam[-1] / lam[0].clamp_min(1e-30))


def zico(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batches: int = 2) -> float:
    """ZiCo (Li et al., "ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients",
    ICLR 2023): sum over layers of log(sum over the layer's weights of mean|g| / std(g)), the
    mean and standard deviation of each weight's loss gradient taken over ``batches`` disjoint
    parts of the batch; high when gradients are large and consistent across data."""
    model = copy.deepcopy(model)
    per = [[] for _ in _weights(model)]
    for xb, yb in zip(torch.chunk(x, batches), torch.chunk(y, batches)):
        _, g = _loss_grads(model, xb, yb)
        for acc, t in zip(per, g):
            acc.append(t.detach().double())
    score = 0.0
    for gs in per:
        s = torch.stack(gs)
        std = s.std(0, unbiased=False)
        ok = std > 0
        v = float((s.abs().mean(0)[ok] / std[ok]).sum())
        if v > 0:
            score += np.log(v)
    return float(score)


# ---- Hessian -----------------------------------------------------------------------------------

class _TwiceDifferentiable:
    """Within it, hardsigmoid and hardswish are computed through relu6 (the same functions),
    since their fused kernels have no second derivative in torch."""

    def __enter__(self):
        self.saved = F.hardsigmoid, F.hardswish
        F.hardsigmoid = lambda x, inplace=False: F.relu6(x + 3.0) / 6.0
        F.hardswish = lambda x, inplace=False: x * F.relu6(x + 3.0) / 6.0

    def __exit__(self, *exc):
        F.hardsigmoid, F.hardswish = self.saved


def hessian_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """(weights, H g): the Hessian of the loss times its gradient, by double back-propagation."""
    with _TwiceDifferentiable():
        return _hessian_gradient(model, x, y)


def _hessian_gradient(model, x, y):
    model.train()
    w = _weights(model)
    model.zero_grad()
    g0 = torch.autograd.grad(F.cross_entropy(model(x), y), w)
    g = torch.autograd.grad(F.cross_entropy(model(x), y), w, create_graph=True)
    z = sum((a.detach() * b).sum() for a, b in zip(g0, g))
    return w, torch.autograd.grad(z, w)


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """GraSP (Wang et al., "Picking Winning Tickets Before Training by Preserving Gradient Flow",
    ICLR 2020): sum over weights of -theta * (H g), H the Hessian and g the gradient of the
    loss; how much removing the weights would reduce the gradient flow (as a NAS proxy: the sum,
    as in Abdelfattah et al. ICLR 2021)."""
    model = copy.deepcopy(model)
    w, hg = hessian_gradient(model, x, y)
    return float(sum((-p.detach() * h).sum() for p, h in zip(w, hg)))


# ---- saliency ----------------------------------------------------------------------------------

def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """SNIP (Lee et al., "SNIP: Single-shot Network Pruning based on Connection Sensitivity",
    ICLR 2019): sum over weights of |theta * dL/dtheta|, the first-order change of the loss if
    every connection were removed."""
    w, g = _loss_grads(copy.deepcopy(model), x, y)
    return float(sum((p.detach() * t).abs().sum() for p, t in zip(w, g)))


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """grad_norm (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021): the sum
    over layers of the Euclidean norm of the loss gradient of the layer's weights."""
    _, g = _loss_grads(copy.deepcopy(model), x, y)
    return float(sum(t.norm() for t in g))


def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fisher (Theis et al., "Faster gaze prediction with dense networks and Fisher pruning", 2018;
    Turner et al., "BlockSwap", ICLR 2020): sum over the output channels c of every convolution
    and linear layer of 0.5 * mean over images of (sum over positions of a * dL/da)^2, a the
    channel's activation: the loss increase if the channel were removed (diagonal Fisher)."""
    model = copy.deepcopy(model).train()
    acts = []

    def hook(_, __, out):
        out.retain_grad()
        acts.append(out)
    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        model.zero_grad()
        F.cross_entropy(model(x), y).backward()
    finally:
        for h in hs:
            h.remove()
    total = 0.0
    for a in acts:
        if a.grad is None:
            continue
        d = (a * a.grad).detach()
        if d.dim() == 4:
            d = d.sum((2, 3))
        total += float((0.5 * d.pow(2).mean(0)).sum())
    return total


def synflow(model: nn.Module, resolution: int | None = None, input_shape=None) -> float:
    """SynFlow (Tanaka et al., "Pruning neural networks without any data by iteratively conserving
    synaptic flow", NeurIPS 2020): sum |theta * dR/dtheta| with R the sum of the outputs for the
    all-ones input through |theta| (BN in eval mode, in float64); data-free. ``input_shape``
    (without the batch) defaults to (3, resolution, resolution)."""
    model = copy.deepcopy(model).double().eval()
    with torch.no_grad():
        for p in model.state_dict().values():
            if p.is_floating_point():
                p.abs_()
    model.zero_grad()
    shape = tuple(input_shape) if input_shape is not None else (3, resolution, resolution)
    model(torch.ones(1, *shape, dtype=torch.float64)).sum().backward()
    return float(sum((p.detach() * p.grad).abs().sum() for p in model.parameters() if p.grad is not None))


# ---- capacity ----------------------------------------------------------------------------------

def zen_score(model: nn.Module, input_shape, n: int = 8, alpha: float = 0.01, seed: int = 0,
              feature=None) -> float:
    """Zen-score (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition",
    ICCV 2021): log E||f(x) - f(x + alpha eps)||_1 (per image, averaged), f the feature map before
    global pooling, x and eps Gaussian, plus the sum over BN layers of log sqrt(mean over
    channels of the batch variance of the BN's input): the expected Gaussian complexity of the
    network (data-free). ``feature`` is the module whose output is f (default: ``model.head``
    if it exists, else the output)."""
    model = copy.deepcopy(model).train()
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, *input_shape, generator=gen)
    eps = torch.randn(n, *input_shape, generator=gen)
    feature = feature if feature is not None else getattr(model, "head", None)
    feats, log_bn = [], []

    def fhook(_, __, out):
        feats.append(out)

    def bnhook(m, inp):
        v = inp[0].transpose(0, 1).flatten(1).var(1, unbiased=False)
        log_bn.append(float(torch.log(torch.sqrt(v.mean()))))
    hs = [m.register_forward_pre_hook(bnhook) for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if feature is not None:
        hs.append(feature.register_forward_hook(fhook))
    try:
        with torch.no_grad():
            o1 = model(x)
            n_bn = len(log_bn)
            o2 = model(x + alpha * eps)
    finally:
        for h in hs:
            h.remove()
    f1, f2 = (feats[0], feats[1]) if feature is not None else (o1, o2)
    delta = (f1 - f2).abs().flatten(1).sum(1).mean() / alpha
    return float(torch.log(delta)) + float(sum(log_bn[:n_bn]))


def n_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# ---- the registry ------------------------------------------------------------------------------

# name -> orientation (score = sign * value; higher score = predicted more accurate)
SIGN = {"naswot": 1, "linear_regions": 1, "jacob_cov": 1, "ntk_cond": -1, "zico": 1, "grasp": 1,
        "snip": 1, "fisher": 1, "grad_norm": 1, "synflow": 1, "zen": 1, "params": 1, "macs": 1}
LOG = {"ntk_cond", "synflow", "snip", "fisher", "grad_norm"}      # scored on a log scale (ranks unchanged)
PER_MODEL = [p for p in SIGN if p not in ("params", "macs")]


def model_proxies(model: nn.Module, x: torch.Tensor, y: torch.Tensor, r: int, ntk_batch: int = 8,
                  seed: int = 0, only=None) -> tuple[dict, dict]:
    """({proxy: value}, {proxy: seconds}) of ``model`` on the batch (x at resolution r)."""
    fns = {
        "naswot": lambda: naswot(model, x),
        "linear_regions": lambda: linear_regions(model, x[:4], points=32, span=1e-4),
        "jacob_cov": lambda: jacob_cov(model, x),
        "ntk_cond": lambda: ntk_cond(model, x[:ntk_batch]),
        "zico": lambda: zico(model, x, y),
        "grasp": lambda: grasp(model, x, y),
        "snip": lambda: snip(model, x, y),
        "fisher": lambda: fisher(model, x, y),
        "grad_norm": lambda: grad_norm(model, x, y),
        "synflow": lambda: synflow(model, r),
        "zen": lambda: zen_score(model, (3, r, r), seed=seed),
    }
    vals, secs = {}, {}
    for name, fn in fns.items():
        if only is not None and name not in only:
            continue
        t = time.perf_counter()
        vals[name] = fn()
        secs[name] = time.perf_counter() - t
    return vals, secs


def score(name: str, value: float) -> float:
    """The oriented score of a proxy value (higher = predicted more accurate)."""
    base = name.split(":")[-1]
    v = float(value)
    if base in LOG:
        v = float(np.log(max(v, 1e-300)))
    return SIGN[base] * v


def genome_proxies(genome: dict, images: np.ndarray, labels: np.ndarray, seed: int = 0,
                   supernet: Supernet | None = None, ntk_batch: int = 8, only=None) -> dict:
    """Every proxy of ``genome`` on the shared batch: ``init:NAME`` on a freshly initialized
    subnet (seed ``seed``), ``trained:NAME`` on the trained supernet's subnet when ``supernet`` is
    given, plus ``params`` and ``macs``; ``seconds`` holds the time of each. ``only``: a set of
    names (``init:naswot``, ...) to compute just those."""
    g = DEFAULT_SPACE.validate(genome)
    x = resize(normalize(torch.from_numpy(np.asarray(images))), g["r"])
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    out, secs = {}, {}
    variants = [("init", lambda: fresh_subnet(g, seed))]
    if supernet is not None:
        variants.append(("trained", lambda: supernet.subnet(g)))
    model = None
    for tag, make in variants:
        want = None if only is None else {n.split(":", 1)[1] for n in only if n.startswith(tag + ":")}
        if want is not None and not want:
            continue
        t = time.perf_counter()
        model = make()
        build = time.perf_counter() - t
        torch.manual_seed(seed)
        vals, s = model_proxies(model, x, y, g["r"], ntk_batch, seed, only=want)
        for k, v in vals.items():
            out[f"{tag}:{k}"] = v
            secs[f"{tag}:{k}"] = round(s[k] + build / len(vals), 4)
    out["params"] = n_params(model if model is not None else fresh_subnet(g, seed))
    out["macs"] = genome_macs(g)
    secs["params"] = secs["macs"] = 0.0
    out["seconds"] = secs
    return out


def check_search_proxy(name: str, reference=None) -> dict:
    """The study's reference (``codesign/weights/proxy_reference.json``) if ``name`` is one of its
    proxies or ``vote``; a SpecError otherwise."""
    import json
    from pathlib import Path
    from codesign.artifacts import WEIGHTS_DIR
    from accelerators.errors import SpecError
    path = Path(reference) if reference else WEIGHTS_DIR / "proxy_reference.json"
    if not path.is_file():
        raise SpecError("--accuracy", "no proxy reference (run the study: codesign proxies --study)", str(path))
    ref = json.loads(path.read_text())
    for m in (ref["vote"] if name == "vote" else [name]):
        if m not in ref["sorted"]:
            raise SpecError("--accuracy", f"unknown proxy {m!r} (one of vote, {', '.join(ref['names'])})")
    return ref


def search_accuracy(name: str, data, weights=None, reference=None, seed: int = 0, batch: int = 16):
    """``(net genome, bits) -> score`` for zero-shot co-search (``--accuracy proxy:NAME``): NAME a
    proxy of the study (``trained:zen``, ``init:naswot``, ``macs``, ...) or ``vote`` (the sum of
    the fractional ranks of the study's best proxies among the study's genomes). The score is on
    the scale of measured top-1 (so that --min-accuracy style constraints and the hypervolume
    reference point keep their meaning): the study's mean 8-bit accuracy, plus the proxy's
    centred fractional rank among the study's genomes times 4 standard deviations of the measured
    accuracy (the ranks span the measured range), plus the mean accuracy difference between the
    bit-width and 8 bits measured in the shipped dataset, since no proxy sees the bit-width. The shared batch is the study's (``batch``
    validation images drawn with ``seed``); scores are cached per subnet."""
    from codesign.space.genome import subnet_key
    from accelerators.errors import SpecError
    ref = check_search_proxy(name, reference)
    members = ref["vote"] if name == "vote" else [name]
    need_data = any(m not in ("params", "macs") for m in members)
    images = labels = net = None
    if need_data:
        if not data:
            raise SpecError("--data", f"required with --accuracy proxy:{name}")
        from codesign.artifacts import predictor_split
        _, hold = predictor_split(data, 5000, 2000, 2500, seed=0)
        pick = np.random.default_rng(seed).choice(len(hold.labels), batch, replace=False)
        images, labels = hold.images[pick], hold.labels[pick]
    if any(m.startswith("trained:") for m in members):
        from codesign.artifacts import supernet_path
        from codesign.nn.supernet import load_supernet
        net = load_supernet(supernet_path(weights))
    srt = {m: np.asarray(ref["sorted"][m]) for m in members}
    span = 4.0 * ref["acc_std"] / len(members)
    cache = {}

    def frac(m, v):
        s = srt[m]
        return (np.searchsorted(s, v, "left") + np.searchsorted(s, v, "right")) / (2.0 * len(s)) - 0.5

    def f(genome, bits):
        k = subnet_key(genome)
        if k not in cache:
            if images is None:
                p = {"params": n_params(fresh_subnet(genome, seed)), "macs": genome_macs(DEFAULT_SPACE.validate(genome))}
            else:
                p = genome_proxies(genome, images, labels, seed, net, only=set(members))
            cache[k] = float(sum(frac(m, score(m, p[m])) for m in members) * span)
        off = ref["bit_offsets"]
        return (ref.get("acc_mean", 0.0) + cache[k] + float(off.get(str(int(bits)), 0.0))
                - float(off.get("8", 0.0)))
    return f


def proxies(genome: dict, images: np.ndarray, seed: int = 0) -> dict:
    """The original four (fresh initialization): NASWOT, log SynFlow, #params, MACs."""
    g = DEFAULT_SPACE.validate(genome)
    model = fresh_subnet(g, seed)
    x = resize(normalize(torch.from_numpy(images)), g["r"])
    return {"naswot": naswot(model, x), "synflow": float(np.log(synflow(model, g["r"]) + 1e-30)),
            "params": n_params(model), "macs": genome_macs(g)}


def correlations(rows: list[dict], images: np.ndarray, seed: int = 0, progress: bool = False) -> dict:
    """Spearman and Kendall correlation of each proxy with measured accuracy on the same subnets."""
    from scipy.stats import kendalltau, spearmanr
    it = rows
    if progress:
        from tqdm import tqdm
        it = tqdm(rows, desc="proxies", unit="subnet")
    vals = [proxies(r["genome"], images, seed) for r in it]
    acc = [r["top1"] for r in rows]
    out = {}
    for name in ("naswot", "synflow", "params", "macs"):
        v = [p[name] for p in vals]
        out[name] = {"spearman": float(spearmanr(v, acc)[0]), "kendall": float(kendalltau(v, acc)[0])}
    out["n"] = len(rows)
    return out
