"""The accuracy predictor, (genome, bit-width) -> top-1, in numpy (no torch), as OFA's
``accuracy_predictor/``: ``encoder`` (the genome code), ``model`` (the predictor, its fitting and
metrics), ``dataset`` (measured rows, split by genome)."""
from codesign.predictors.accuracy.dataset import genome_ids, read_datasets, split_by_genome  # noqa: F401
from codesign.predictors.accuracy.encoder import BITS, base_features, encode, features, summary  # noqa: F401
from codesign.predictors.accuracy.model import KINDS, Predictor, evaluate, fit, metrics, train_predictor  # noqa: F401
