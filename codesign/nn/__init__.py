"""The neural side, and the only place torch is imported: the Once-for-All supernet and its shape,
quantization, training, accuracy measurement, zero-shot proxies, the model card and the image data."""
