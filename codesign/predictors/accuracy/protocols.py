"""Measurement protocols of accuracy rows: a measured top-1 is a number only together with how it
was measured. Two protocols are in use (README, "Measurement protocols"):

* ``predictor``: the accuracy predictor's data (``codesign accuracy-data`` with the shipped
  settings; ``codesign/weights/accuracy_data.jsonl``, ``experiments/predictor_extremes/``): BN
  recalibrated on 2,000 augmented training images, ``mse`` ranges, top-1 on a seeded,
  class-balanced **2,500** of the 5,000 validation images, BN statistics **re-estimated on the
  quantized subnet at 4 bits, the float subnet's at 6/8/16 bits**, measurement seed = data seed +
  the genome's plan index.
* ``verify``: ``codesign verify`` / ``codesign search --data`` / ``add-measured`` and the co-search
  benchmark's ``measured.jsonl``: the same calibration, top-1 on **all 5,000** validation images,
  BN **re-estimated on the quantized subnet at every bit-width**, measurement seed 0. This is the
  protocol of every reported (front) figure.

Anything else (other image counts, other BN modes) is ``other``. A row names its protocol in its
``protocol`` field (a name; rows written by ``add-measured`` before names existed hold the verify
protocol's dict there, which :func:`protocol_name` reads as ``verify``)."""
from __future__ import annotations

PROTOCOLS = {
    "predictor": {"eval_images": 2500, "holdout": 5000, "calib_images": 2000, "clip": "mse",
                  "bn": {"4": "quantized", "6": "float", "8": "float", "16": "float"},
                  "seed": "data seed + plan index",
                  "what": "the predictor's data: 2,500 of the 5,000 validation images, BN quantized at 4 bits "
                          "and float at 6/8/16 bits"},
    "verify": {"eval_images": 5000, "holdout": 5000, "calib_images": 2000, "clip": "mse",
               "bn": {"4": "quantized", "6": "quantized", "8": "quantized", "16": "quantized"}, "seed": 0,
               "what": "codesign verify: all 5,000 validation images, BN quantized at every bit-width, seed 0 "
                       "(canonical for reported figures)"},
}
CANONICAL = "verify"          # the protocol of reported (front) figures
NAMES = (*PROTOCOLS, "other")


def measurement_protocol(eval_images, holdout: int, bn: str, bits: int, clip: str = "mse") -> str:
    """The name of the protocol a ``codesign accuracy-data`` row was measured under."""
    p = PROTOCOLS["predictor"]
    if (eval_images == p["eval_images"] and holdout == p["holdout"] and clip == p["clip"]
            and bn == p["bn"][str(int(bits))]):
        return "predictor"
    return "other"


def verify_protocol_name(protocol: dict) -> str:
    """The name of a ``codesign verify`` protocol dict (``codesign.rundir.verify.protocol_of``):
    ``verify`` for all validation images of the default hold-out, else ``other`` (a subset)."""
    if (isinstance(protocol, dict) and protocol.get("split") == "validation" and protocol.get("images") is None
            and protocol.get("holdout", 5000) == PROTOCOLS["verify"]["holdout"]):
        return "verify"
    return "other"


def protocol_name(row: dict, default: str | None = None) -> str | None:
    """The protocol of one measured row: its ``protocol`` name, the verify dict of older
    ``add-measured`` rows, or ``default`` where the row has none."""
    p = row.get("protocol")
    if isinstance(p, str):
        return p
    if isinstance(p, dict):
        return verify_protocol_name(p)
    return default


def check_protocol(row: dict) -> None:
    """A ValueError when a row's ``protocol`` is present and not a known name or a verify dict."""
    p = row.get("protocol")
    if p is None or isinstance(p, dict):
        return
    if not isinstance(p, str) or p not in NAMES:
        raise ValueError(f"protocol: not one of {', '.join(NAMES)}: {p!r}"[:100])


def count_protocols(rows, default: str = "unrecorded") -> dict:
    """{protocol name: rows} over ``rows``."""
    out: dict = {}
    for r in rows:
        k = protocol_name(r, default)
        out[k] = out.get(k, 0) + 1
    return dict(sorted(out.items()))
