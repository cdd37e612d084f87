"""The neural side and the co-search of the hardware-neural co-design simulator, by role:
``nn`` (the supernet, torch), ``space`` (what is searched), ``predictors``, ``search``,
``rundir`` (run directories), ``report`` and ``cli`` (the ``codesign`` command).

The Python API (``codesign.api``) is importable from here: ``load_space``, ``CoSearchProblem``,
the algorithms ``NSGA2``, ``Scalar``, ``Random``, ``Sequential``, ``SequentialTopK``, ``HardwareOnly``,
``minimize``, ``load_result`` and the ``Space``, ``Result`` and ``Design`` classes (loaded on first use: importing
``codesign`` imports neither the API nor torch)."""

_API = ("Space", "load_space", "CoSearchProblem", "NSGA2", "Scalar", "Random", "Sequential", "SequentialTopK",
        "HardwareOnly", "ALGORITHM_CLASSES", "minimize", "Result", "Design", "load_result")
__all__ = list(_API)


def __getattr__(name):
    if name in _API:
        from codesign import api
        return getattr(api, name)
    raise AttributeError(f"module 'codesign' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_API))
