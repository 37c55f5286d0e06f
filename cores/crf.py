"""Fully connected CRF (Kraehenbuehl & Koltun) through pydensecrf, with SEC's parameters (method §5).

``dense_crf`` is public API. This module imports no MXNet, so CRF worker processes start fast;
the MXNet operator that applies it to a batch lives in ``cores.symbols.crf_op``.
"""
import cv2
import numpy as np
import pydensecrf.densecrf as dcrf

from cores.grid import zoom_linear


def train_params(cfg):
    """The constrain loss's CRF (method §5), from the config: the keyword arguments of
    ``dense_crf``."""
    return dict(scale_factor=cfg.CRF_SCALE, pos_xy_std=cfg.CRF_POS_XY_STD, pos_w=cfg.CRF_POS_W,
                bi_xy_std=cfg.CRF_BI_XY_STD, bi_rgb_std=cfg.CRF_BI_RGB_STD, bi_w=cfg.CRF_BI_W,
                maxiter=cfg.CRF_MAXITER)


def test_params(cfg):
    """The test-time CRF (method §5), from the config: ``train_params``'s pairwise terms with the
    test-time scale and colour deviation, plus the unary floor, the image's channel order and
    the long side above which the CRF runs on a scaled copy (cores/evaluation.py)."""
    return dict(train_params(cfg), scale_factor=cfg.CRF_TEST_SCALE,
                bi_rgb_std=cfg.CRF_TEST_BI_RGB_STD, min_prob=cfg.CRF_TEST_MIN_PROB,
                channel_order=cfg.CRF_TEST_CHANNEL_ORDER, max_side=cfg.CRF_TEST_MAX_SIDE)


def dense_crf(image, unary, *, scale_factor, pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w,
              maxiter):
    """Mean-field marginals Q (C, H, W) float32. The parameters: ``train_params`` or
    ``test_params`` of a config.

    image: (H, W, 3) uint8 in the order the original passes it: BGR in training, RGB at test
    time (method §5; the lattice is not invariant to the channel order). unary: (C, H, W)
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


def test_time_crf(rgb, probs, params):
    """Spec 5, test time: CRF at full resolution with unary log(max(p, floor)), on the image
    in RGB order as the authors' demo (CRF_TEST_CHANNEL_ORDER: BGR for this project's former
    choice). Images whose long side exceeds CRF_TEST_MAX_SIDE run the CRF on a copy scaled
    down to it (spatial deviations scaled alike) and the marginals are scaled back: memory
    stays bounded (a 4000x3000 image would need ~4 GB at 5 classes)."""
    height, width = rgb.shape[:2]
    cap = params.get("max_side") or 0
    factor = 1.0
    if cap and max(height, width) > cap:
        factor = cap / max(height, width)
        small = (max(1, round(height * factor)), max(1, round(width * factor)))
        rgb = cv2.resize(rgb, (small[1], small[0]), interpolation=cv2.INTER_AREA)
        probs = zoom_linear(probs, *small)
    unary = np.log(np.maximum(probs, params["min_prob"]))
    image = rgb[:, :, ::-1] if params["channel_order"] == "BGR" else rgb
    pairwise = {k: v for k, v in params.items()
                if k not in ("min_prob", "channel_order", "max_side")}
    pairwise["scale_factor"] = params["scale_factor"] / factor
    q = dense_crf(np.ascontiguousarray(image), unary, **pairwise)
    return q if factor == 1.0 else zoom_linear(q, height, width)
