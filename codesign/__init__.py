"""Neural side and co-search of the hardware-neural co-design simulator (command line for now;
the supernet, predictor and search land with later issues)."""
