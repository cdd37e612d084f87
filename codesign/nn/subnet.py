"""A subnet on its own: the stand-alone module of a network genome and its export as
``subnet.pt`` (state_dict) and, when the onnx package is present, ``subnet.onnx``."""
from __future__ import annotations

import warnings
from pathlib import Path

from codesign.nn.supernet import Supernet, load_supernet
from codesign.space.genome import DEFAULT_SPACE


def build_subnet(net_genome: dict, state_dict=None):
    """The stand-alone subnet module of ``net_genome`` (random weights, or ``state_dict``: e.g.
    ``torch.load('subnet.pt', weights_only=True)``). Input: images at the genome's resolution."""
    sub = Supernet().subnet(DEFAULT_SPACE.validate(net_genome))
    if state_dict is not None:
        sub.load_state_dict(state_dict)
    return sub.eval()


def load_subnet(design_dir):
    """The subnet of a design exported by ``codesign export RUN --design ID --out DIR``: its genome
    from ``DIR/design.json``, its weights from ``DIR/subnet.pt`` (``torch.load(weights_only=True)``:
    no code runs), in eval mode. Input: images at ``design.json``'s ``files.input_resolution``."""
    import json

    import torch
    from accelerators.errors import SpecError
    d = Path(design_dir)
    for f in ("design.json", "subnet.pt"):
        if not (d / f).is_file():
            raise SpecError("design", f"no {f} here (export the design with PyTorch installed and supernet weights)",
                            str(d))
    genome = json.loads((d / "design.json").read_text())["genome"]["net"]
    return build_subnet(genome, torch.load(d / "subnet.pt", weights_only=True, map_location="cpu"))


def export_subnet(net_genome: dict, weights, outdir, onnx: bool = True, log=print, supernet=None) -> dict:
    """``subnet.pt`` (state_dict) and, when the onnx package is present, ``subnet.onnx``."""
    import torch
    out = Path(outdir)
    sup = supernet if supernet is not None else load_supernet(weights)
    sub = sup.subnet(net_genome).eval()
    torch.save(sub.state_dict(), out / "subnet.pt")
    files = {"subnet": "subnet.pt", "weights": str(Path(weights).resolve()), "input_resolution": int(net_genome["r"])}
    if not onnx:
        files["onnx"] = None
        return files
    try:
        import onnx as _onnx  # noqa: F401
    except ImportError:
        files["onnx"] = None
        log("note: ONNX skipped: torch.onnx.export needs the onnx package (pip install onnx)")
        return files
    r = int(net_genome["r"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(sub, (torch.zeros(1, 3, r, r),), str(out / "subnet.onnx"), dynamo=False,
                          input_names=["image"], output_names=["logits"], opset_version=17,
                          dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    files["onnx"] = "subnet.onnx"
    return files
