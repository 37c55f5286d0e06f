"""The SEC losses (method §4) as plain MXNet symbol functions.

Each returns a scalar symbol, not wrapped in MakeLoss (the network builder does that). Shapes:
``scores``/``probs`` (N, C, H, W) with class 0 = background, ``cues`` (N, C, H, W) 0/1,
``labels`` (N, C) 0/1. Nothing depends on C = 21 or H x W = 41 x 41.
"""
import mxnet as mx


def softmax_with_floor(scores, min_prob=1e-4):
    """p = (softmax_C(f) + min_prob) / (1 + C min_prob): no probability below ~min_prob."""
    floored = mx.sym.softmax(scores, axis=1) + min_prob
    # The softmax sums to 1, so this sum is 1 + C * min_prob without knowing C.
    return mx.sym.broadcast_div(floored, mx.sym.sum(floored, axis=1, keepdims=True))


def seed_loss(probs, cues):
    """L_seed = -(1/N) sum_n sum_{c,u} S log p / sum_{c,u} S. An image without cues adds 0."""
    per_image = mx.sym.sum(cues * mx.sym.log(probs), axis=(1, 2, 3))
    count = mx.sym.maximum(mx.sym.sum(cues, axis=(1, 2, 3)), 1.0)
    return -mx.sym.mean(per_image / count)


def gwrp(values, q):
    """Global weighted rank pooling over the last axis: sum_j q^(j-1) x_(j) / sum_j q^(j-1),
    x sorted in decreasing order. ``values`` (N, K, M) -> (N, K). The weights come from the
    shape, so nothing is learned or fed."""
    ranked = mx.sym.sort(values, axis=2, is_ascend=False)
    weights = q ** mx.sym.contrib.arange_like(ranked, axis=2)
    pooled = mx.sym.sum(mx.sym.broadcast_mul(ranked, mx.sym.reshape(weights, shape=(1, 1, -1))),
                        axis=2)
    return mx.sym.broadcast_div(pooled, mx.sym.sum(weights))


def expand_loss(probs, labels, q_fg=0.996, q_bg=0.999):
    """L_expand (method §4): GWRP of present classes (q_fg) and of the background (q_bg), and the
    max of absent classes. Each average over a class set is taken only where the set is not
    empty, so an image with all (or no) foreground classes stays finite."""
    flat = mx.sym.reshape(probs, shape=(0, 0, -1))
    fg = mx.sym.slice_axis(flat, axis=1, begin=1, end=None)
    bg = mx.sym.slice_axis(flat, axis=1, begin=0, end=1)
    present = mx.sym.slice_axis(labels, axis=1, begin=1, end=None)
    absent = 1.0 - present
    log_present = mx.sym.sum(present * mx.sym.log(gwrp(fg, q_fg)), axis=1)
    log_present = log_present / mx.sym.maximum(mx.sym.sum(present, axis=1), 1.0)
    log_absent = mx.sym.sum(absent * mx.sym.log(1.0 - mx.sym.max(fg, axis=2)), axis=1)
    log_absent = log_absent / mx.sym.maximum(mx.sym.sum(absent, axis=1), 1.0)
    log_bg = mx.sym.reshape(mx.sym.log(gwrp(bg, q_bg)), shape=(-1,))
    return -mx.sym.mean(log_present + log_absent + log_bg)


def constrain_loss(probs, crf_log_probs):
    """L_constrain = (1/(N H W)) sum_{n,u} sum_c Q log(Q / p), Q = exp(crf_log_probs) held
    constant: no gradient reaches ``crf_log_probs``."""
    log_q = mx.sym.BlockGrad(crf_log_probs)
    kl = mx.sym.sum(mx.sym.exp(log_q) * (log_q - mx.sym.log(probs)), axis=1)
    return mx.sym.mean(kl)
