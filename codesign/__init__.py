"""The neural side and the co-search of the hardware-neural co-design simulator, by role:
``nn`` (the supernet, torch), ``space`` (what is searched), ``predictors``, ``search``,
``rundir`` (run directories), ``report`` and ``cli`` (the ``codesign`` command)."""
