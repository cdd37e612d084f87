"""Deprecated import path (one release): the module is now ``codesign.space.genome``, where
``genome_key`` is called ``subnet_key``."""
from codesign.space.genome import *  # noqa: F401,F403
from codesign.space.genome import subnet_key as genome_key  # noqa: F401
