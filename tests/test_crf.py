"""Dense CRF: parameters as spec 5, the sign of the unary, the batch operator."""
import mxnet as mx
import numpy as np
import pydensecrf.densecrf as dcrf
import pytest

from cores import crf
from cores.symbols import crf_op  # noqa: F401  (registers sec_crf)
from cores.workers import shared_pool


def _case(n=3, c=5, h=41, w=41, seed=0):
    rng = np.random.RandomState(seed)
    images = rng.randint(0, 256, size=(n, h, w, 3)).astype(np.uint8)
    images[:, : h // 2] //= 4          # an edge for the bilateral term to respect
    scores = (rng.randn(n, c, h, w) * 2).astype(np.float32)
    return images, scores


def _direct(image, unary, sxy_g, sxy_b, srgb, w_g, w_b, iters):
    c, h, w = unary.shape
    d = dcrf.DenseCRF2D(w, h, c)
    d.setUnaryEnergy(np.ascontiguousarray(-unary.reshape(c, -1), dtype=np.float32))
    d.addPairwiseGaussian(sxy=sxy_g, compat=w_g, kernel=dcrf.DIAG_KERNEL,
                          normalization=dcrf.NORMALIZE_SYMMETRIC)
    d.addPairwiseBilateral(sxy=sxy_b, srgb=srgb, rgbim=np.ascontiguousarray(image), compat=w_b,
                           kernel=dcrf.DIAG_KERNEL, normalization=dcrf.NORMALIZE_SYMMETRIC)
    return np.array(d.inference(iters), dtype=np.float32).reshape(c, h, w)


def test_defaults_are_the_test_time_parameters():
    images, scores = _case(n=1)
    got = crf.dense_crf(images[0], scores[0])
    want = _direct(images[0], scores[0], 3.0, 80.0, 13.0, 3.0, 10.0, 10)
    np.testing.assert_array_equal(got, want)


def test_training_parameters_scale_the_spatial_terms():
    images, scores = _case(n=1, seed=1)
    got = crf.dense_crf(images[0], scores[0], **crf.TRAIN_PARAMS)
    want = _direct(images[0], scores[0], 3.0 / 12, 80.0 / 12, 13.0, 3.0, 10.0, 10)
    np.testing.assert_array_equal(got, want)
    # and the pairwise terms matter: without them the answer differs
    plain = crf.dense_crf(images[0], scores[0], pos_w=0.0, bi_w=0.0)
    assert np.abs(got - plain).max() > 1e-2


def test_unary_is_the_negative_energy():
    """Without pairwise terms mean field returns softmax(unary): scores are log-potentials."""
    images, scores = _case(n=1, c=4, h=7, w=9)
    got = crf.dense_crf(images[0], scores[0], pos_w=0.0, bi_w=0.0)
    e = np.exp(scores[0] - scores[0].max(axis=0))
    np.testing.assert_allclose(got, e / e.sum(axis=0), rtol=1e-5, atol=1e-6)


def test_bad_inputs_are_named():
    images, scores = _case(n=1)
    with pytest.raises(ValueError, match="does not match"):
        crf.dense_crf(images[0][:10], scores[0])
    with pytest.raises(ValueError, match="uint8"):
        crf.dense_crf(images[0].astype(np.float32), scores[0])


def _op_forward(images, scores, workers, min_prob=1e-4):
    sym = mx.sym.Custom(mx.sym.Variable("scores"), mx.sym.Variable("small_images"),
                        op_type="sec_crf", workers=workers, min_prob=min_prob)
    args = {"scores": mx.nd.array(scores), "small_images": mx.nd.array(images)}
    grads = {k: mx.nd.ones(v.shape) for k, v in args.items()}   # must be overwritten with 0
    ex = mx.sym.MakeLoss(mx.sym.sum(sym)).bind(mx.cpu(), args, args_grad=grads)
    ex.forward(is_train=True)
    out = ex.outputs[0]
    ex.backward()
    log_q = mx.sym.Custom(mx.sym.Variable("scores"), mx.sym.Variable("small_images"),
                          op_type="sec_crf", workers=workers, min_prob=min_prob).bind(
        mx.cpu(), args).forward()[0].asnumpy()
    return log_q, {k: v.asnumpy() for k, v in grads.items()}, out


@pytest.mark.parametrize("workers", [1, 2])
def test_operator_equals_per_image_calls_and_has_zero_gradient(workers):
    images, scores = _case(n=3)
    log_q, grads, _ = _op_forward(images, scores, workers)
    for i in range(len(scores)):
        q = crf.dense_crf(images[i], scores[i], **crf.TRAIN_PARAMS)
        q = np.maximum(q, 1e-4)
        q /= q.sum(axis=0, keepdims=True)
        np.testing.assert_allclose(log_q[i], np.log(q), rtol=1e-6, atol=1e-6)
    assert log_q.min() >= np.log(1e-4 / (1 + 5e-4)) - 1e-6
    np.testing.assert_allclose(np.exp(log_q).sum(axis=1), 1.0, rtol=1e-5)
    for name, g in grads.items():
        assert np.all(g == 0), name


def test_operator_parallel_equals_serial_exactly():
    images, scores = _case(n=5, seed=4)
    serial, _, _ = _op_forward(images, scores, workers=1)
    parallel, _, _ = _op_forward(images, scores, workers=3)
    np.testing.assert_array_equal(serial, parallel)


def test_parallel_batch_equals_serial_exactly():
    images, scores = _case(n=4, seed=3)
    serial = crf.batch_crf(images, scores, crf.TRAIN_PARAMS)
    parallel = crf.batch_crf(images, scores, crf.TRAIN_PARAMS, pool=shared_pool(2))
    np.testing.assert_array_equal(serial, parallel)


def test_operator_rejects_mismatched_small_images(capfd):
    """MXNet prints a CustomOp's exception and raises its own; the printed text names it."""
    sym = mx.sym.Custom(mx.sym.Variable("scores"), mx.sym.Variable("small_images"),
                        op_type="sec_crf")
    with pytest.raises(mx.base.MXNetError):
        sym.infer_shape(scores=(2, 5, 41, 41), small_images=(2, 3, 41, 41))
    assert "small_images has shape (2, 3, 41, 41), expected (N, H, W, 3)" in capfd.readouterr().out
