"""The co-search: the problem (a genome's objectives and constraint violation), the algorithms
registered by name, the NSGA-II operators and the executors that run evaluations in parallel."""
