"""Fully connected CRF (Kraehenbuehl & Koltun) through pydensecrf, with SEC's parameters (spec 5).

``dense_crf`` is public API. This module imports no MXNet, so CRF worker processes start fast;
the MXNet operator that applies it to a batch lives in ``cores.symbols.crf_op``.
"""
import numpy as np
import pydensecrf.densecrf as dcrf

TRAIN_PARAMS = dict(scale_factor=12.0, pos_xy_std=3.0, pos_w=3.0, bi_xy_std=80.0,
                    bi_rgb_std=13.0, bi_w=10.0, maxiter=10)


def dense_crf(image, unary, scale_factor=1.0, pos_xy_std=3.0, pos_w=3.0, bi_xy_std=80.0,
              bi_rgb_std=13.0, bi_w=10.0, maxiter=10):
    """Mean-field marginals Q (C, H, W) float32.

    image: (H, W, 3) uint8 in the order the original passes it: BGR in training, RGB at test
    time (spec 5; the lattice is not invariant to the channel order). unary: (C, H, W)
    log-probabilities or raw scores; the unary energy is its negative. Spatial standard
    deviations are divided by ``scale_factor`` (12 in training on the 41x41 grid, 1 at full
    resolution).
    """
    unary = np.asarray(unary)
    if unary.ndim != 3:
        raise ValueError("dense_crf: unary must be (C, H, W), got shape %s" % (unary.shape,))
    num_classes, height, width = unary.shape
    image = np.asarray(image)
    if image.shape != (height, width, 3):
        raise ValueError("dense_crf: image shape %s does not match the unary's %dx%d (H, W, 3)"
                         % (image.shape, height, width))
    if image.dtype != np.uint8:
        raise ValueError("dense_crf: image must be uint8, got %s" % image.dtype)
    crf = dcrf.DenseCRF2D(width, height, num_classes)
    crf.setUnaryEnergy(np.ascontiguousarray(-unary.reshape(num_classes, -1), dtype=np.float32))
    crf.addPairwiseGaussian(sxy=pos_xy_std / scale_factor, compat=pos_w,
                            kernel=dcrf.DIAG_KERNEL, normalization=dcrf.NORMALIZE_SYMMETRIC)
    crf.addPairwiseBilateral(sxy=bi_xy_std / scale_factor, srgb=bi_rgb_std,
                             rgbim=np.ascontiguousarray(image), compat=bi_w,
                             kernel=dcrf.DIAG_KERNEL, normalization=dcrf.NORMALIZE_SYMMETRIC)
    q = crf.inference(int(maxiter))
    return np.asarray(q, dtype=np.float32).reshape(num_classes, height, width)


def floored_log_q(q, min_prob):
    """log of Q floored at ``min_prob`` and renormalised over classes (axis 1 of N,C,H,W)."""
    q = np.maximum(q, min_prob)
    return np.log(q / q.sum(axis=1, keepdims=True))


def _crf_chunk(args):
    images, unaries, params = args
    return np.stack([dense_crf(im, un, **params) for im, un in zip(images, unaries)])


def batch_crf(images, unaries, params, pool=None):
    """Q for a batch: images (N, H, W, 3) uint8, unaries (N, C, H, W) -> (N, C, H, W).

    With a ``concurrent.futures`` process pool of P workers the batch is cut into P + 1
    contiguous chunks: the pool takes P (one message each way per worker) and the caller
    computes the first while it waits. The results are the same arrays as the serial path,
    since each image is an independent, deterministic call.
    """
    if pool is None or len(unaries) < 2:
        return _crf_chunk((images, unaries, params))
    parts = min(pool._max_workers + 1, len(unaries))
    bounds = np.linspace(0, len(unaries), parts + 1).astype(int)
    chunks = [(images[a:b], unaries[a:b], params) for a, b in zip(bounds[:-1], bounds[1:])]
    futures = [pool.submit(_crf_chunk, chunk) for chunk in chunks[1:]]
    first = _crf_chunk(chunks[0])
    return np.concatenate([first] + [f.result() for f in futures])
