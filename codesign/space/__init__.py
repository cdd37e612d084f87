"""What is searched: the network genome (the supernet's subnets) and its accelerator layers, the
joint network x hardware space, and the one builder of an Architecture from a hardware point.

``codesign.space`` was the joint space's module before 0.2; its names stay importable from here
for one release (deprecated: import them from ``codesign.space.joint``)."""
from codesign.space.joint import *  # noqa: F401,F403  (the pre-0.2 ``codesign.space`` module)
