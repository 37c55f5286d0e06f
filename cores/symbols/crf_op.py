"""The ``sec_crf`` CustomOp: dense CRF on a batch of score maps (method §4-5); DSRG's
``dsrg_grow`` (cores/methods/dsrg.py) runs the same CRF with its growing on the output.

Inputs: ``scores`` (N, C, H, W) raw fc8 scores, ``small_images`` (N, H, W, 3) 0..255 BGR (the
network input downscaled to H x W). Output: log Q, floored at ``min_prob`` and renormalised.
The CRF is a constant of the constrain loss, so both inputs receive exactly zero gradient.
"""
import ast

import mxnet as mx
import numpy as np

from cores import crf
from cores.workers import worker_count
from cores.workers import shared_pool


class _CRFOp(mx.operator.CustomOp):
    def __init__(self, params, min_prob, workers):
        super().__init__()
        self.params = params
        self.min_prob = min_prob
        self.workers = workers

    def forward(self, is_train, req, in_data, out_data, aux):
        scores = in_data[0].asnumpy().astype(np.float32)
        images = np.clip(np.round(in_data[1].asnumpy()), 0, 255).astype(np.uint8)
        # this thread computes one share itself: ``workers`` processes in all
        pool = shared_pool(min(self.workers, len(scores)) - 1)
        q = crf.batch_crf(images, scores, self.params, pool)
        self.assign(out_data[0], req[0], mx.nd.array(crf.floored_log_q(q, self.min_prob)))

    def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
        for i, grad in enumerate(in_grad):
            self.assign(grad, req[i], 0)


@mx.operator.register("sec_crf")
class _CRFProp(mx.operator.CustomOpProp):
    def __init__(self, scale_factor, pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w, maxiter,
                 min_prob, workers):
        super().__init__(need_top_grad=False)
        self.params = self.parse(scale_factor, pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w,
                                 maxiter)
        self.min_prob = float(min_prob)
        self.workers = worker_count(int(ast.literal_eval(workers)))

    @staticmethod
    def parse(scale_factor, pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w, maxiter):
        """``dense_crf``'s keyword arguments from the operator's string attributes."""
        return dict(scale_factor=float(scale_factor), pos_xy_std=float(pos_xy_std),
                    pos_w=float(pos_w), bi_xy_std=float(bi_xy_std), bi_rgb_std=float(bi_rgb_std),
                    bi_w=float(bi_w), maxiter=int(ast.literal_eval(str(maxiter))))

    @staticmethod
    def check_image_shape(scores, images):
        expected = (scores[0], scores[2], scores[3], 3)
        if tuple(images) != expected:
            raise ValueError("sec_crf: small_images has shape %s, expected (N, H, W, 3) = %s to "
                             "match scores %s" % (tuple(images), expected, tuple(scores)))

    def list_arguments(self):
        return ["scores", "small_images"]

    def list_outputs(self):
        return ["output"]

    def infer_shape(self, in_shape):
        scores, images = in_shape
        self.check_image_shape(scores, images)
        return [scores, images], [scores], []

    def declare_backward_dependency(self, out_grad, in_data, out_data):
        return []

    def create_operator(self, ctx, shapes, dtypes):
        return _CRFOp(self.params, self.min_prob, self.workers)
