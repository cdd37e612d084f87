"""Differentiable hardware-aware search (DARTS / ProxylessNAS / FBNet style) over the shared
supernet (issue #22): ``relax`` (architecture parameters), ``lut`` (per-op cost look-up table from
the analytical accelerator model), ``loss`` (hardware-aware losses), ``search`` (the bilevel loop),
``run`` (the checkpointed, resumable run directory)."""
