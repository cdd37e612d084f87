"""Getting results out of run directories: tables, design export (Timeloop YAML, PyTorch subnet),
plots and the interactive HTML report (``html``)."""
