"""Analytical accelerator model with Timeloop's semantics, vectorized over mappings (numpy only)."""
from .arch import ActionEnergy, Architecture, Compute, Level
from .errors import MappingError, SpecError
from .mapping import LevelMapping, Mapping, MappingBatch, to_batch, validate
from .model import BatchResult, Evaluation, evaluate, evaluate_batch
from .workload import DataSpace, Workload, conv2d, depthwise_conv2d, fully_connected, matmul

__all__ = ["ActionEnergy", "Architecture", "Compute", "Level", "MappingError", "SpecError",
           "LevelMapping", "Mapping", "MappingBatch", "to_batch", "validate", "BatchResult",
           "Evaluation", "evaluate", "evaluate_batch", "DataSpace", "Workload", "conv2d",
           "depthwise_conv2d", "fully_connected", "matmul"]
