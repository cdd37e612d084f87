"""Names of the quantization range calibrations (``codesign.nn.quant`` implements them) and of the
BatchNorm statistics a quantized measurement uses (``codesign.nn.measure``), torch-free so that the
command line and the data files can name them without importing torch."""
CLIPS = ("minmax", "mse")
DEFAULT_CLIP = "mse"       # what the shipped accuracy data and model card were measured with

# BN statistics of a fake-quantized subnet: "float" keeps those recalibrated on the float subnet;
# "quantized" re-estimates them on the quantized subnet (weights and activations fake-quantized,
# ranges fixed), which a deployment folds into per-channel scales and biases exactly
BN_MODES = ("float", "quantized")
DEFAULT_BN = "quantized"
