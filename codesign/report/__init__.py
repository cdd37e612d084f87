"""Getting results out of run directories: tables, design export (Timeloop YAML, PyTorch subnet)
and plots."""
