"""Names of the quantization range calibrations (``codesign.quant`` implements them), torch-free
so that the command line and the data files can name them without importing torch."""
CLIPS = ("minmax", "mse")
DEFAULT_CLIP = "mse"       # what the shipped accuracy data and model card were measured with
