"""Float32 tolerances that state a property: the rounding a computation of a known accumulation
length can make."""

import torch


def f32_tol(ref, k):
    """Rounding allowance for float32 results of size |ref| made of sums of k products:
    k * eps_float32 * max|ref|."""
    return k * torch.finfo(torch.float32).eps * float(ref.detach().abs().max())


def fan_in(m):
    "The longest sum one layer of `m` computes per output value: the fan-in of its widest weight."
    return max(w[0].numel() for w in m.parameters() if w.ndim > 1)
