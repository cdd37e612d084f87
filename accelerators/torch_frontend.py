"""Layers of a PyTorch ``nn.Module``, found by tracing it with torch.fx and propagating shapes.

torch is imported inside the function only: the accelerator package stays numpy-only.
Convolutions (grouped and depthwise included) and linear layers become workloads; everything
else (activations, pooling, additions, ...) costs no MACs in this model and is skipped.
"""
from __future__ import annotations

from .network import Layer
from .workload import conv2d, fully_connected


def layers_from_torch(model, input_shape=(1, 3, 32, 32), bits: dict | None = None) -> list[Layer]:
    import torch
    from torch import fx, nn
    from torch.fx.passes.shape_prop import ShapeProp

    model = model.eval()
    gm = fx.symbolic_trace(model)
    example = torch.zeros(*input_shape)
    with torch.no_grad():
        ShapeProp(gm).propagate(example)
    modules = dict(gm.named_modules())
    out = []
    for node in gm.graph.nodes:
        if node.op != "call_module":
            continue
        m = modules[node.target]
        meta = node.meta.get("tensor_meta")
        if meta is None:
            continue
        oshape = tuple(meta.shape)
        name = str(node.target)
        if isinstance(m, nn.Conv2d):
            n, k, p_out, q_out = oshape[0], oshape[1], oshape[3], oshape[2]
            g = m.groups
            r, s = m.kernel_size[1], m.kernel_size[0]
            stride = (m.stride[1], m.stride[0])
            dil = (m.dilation[1], m.dilation[0])
            out.append(Layer(name, conv2d(name, N=n, K=k // g, C=m.in_channels // g, P=p_out, Q=q_out,
                                          R=r, S=s, stride=stride, dilation=dil, groups=g, bits=bits)))
        elif isinstance(m, nn.Linear):
            batch = 1
            for d in oshape[:-1]:
                batch *= int(d)
            out.append(Layer(name, fully_connected(name, batch=batch, in_features=m.in_features,
                                                   out_features=m.out_features, bits=bits)))
        elif isinstance(m, (nn.Conv1d, nn.Conv3d, nn.ConvTranspose2d)):
            raise NotImplementedError(f"{name}: {type(m).__name__} is not supported yet")
    return out
