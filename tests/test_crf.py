"""Dense CRF: parameters as method §5, the sign of the unary, the batch operator."""
import mxnet as mx
import numpy as np
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


def _spec_cfg(**overrides):
    from cores.config import load_config
    return load_config(None, ["%s=%s" % kv for kv in overrides.items()])


TRAIN = crf.train_params(_spec_cfg())


class _Recorder:
    """Stands in for pydensecrf's DenseCRF2D and records what it is asked to do."""
    calls = []

    def __init__(self, width, height, labels):
        self.calls.append(("shape", width, height, labels))
        self.labels, self.size = labels, width * height

    def setUnaryEnergy(self, energy):
        self.calls.append(("unary", energy.copy()))

    def addPairwiseGaussian(self, **kw):
        self.calls.append(("gaussian", kw["sxy"], kw["compat"]))

    def addPairwiseBilateral(self, **kw):
        self.calls.append(("bilateral", kw["sxy"], kw["srgb"], kw["compat"],
                           kw["rgbim"].copy()))

    def inference(self, iters):
        self.calls.append(("iterations", iters))
        return np.full((self.labels, self.size), 1.0 / self.labels, np.float32)


@pytest.mark.parametrize("stage,want", [
    # method §5: training on the 41x41 grid divides the spatial deviations by 12; test time by 1
    ("train", dict(gaussian=(3.0 / 12, 3.0), bilateral=(80.0 / 12, 13.0, 10.0))),
    ("test", dict(gaussian=(3.0, 3.0), bilateral=(80.0, 13.0, 10.0))),
])
def test_spec_parameters_reach_pydensecrf(monkeypatch, stage, want):
    """The config's defaults arrive at pydensecrf as method §5 writes them (the numbers are the
    spec's, not read from the code), with the negated unary and 10 mean-field iterations."""
    params = TRAIN if stage == "train" else {
        k: v for k, v in crf.test_params(_spec_cfg()).items()
        if k not in ("min_prob", "channel_order", "max_side")}
    _Recorder.calls = []
    monkeypatch.setattr(crf.dcrf, "DenseCRF2D", _Recorder)
    images, scores = _case(n=1, c=3, h=5, w=6)
    crf.dense_crf(images[0], scores[0], **params)
    calls = {c[0]: c[1:] for c in _Recorder.calls}
    assert calls["shape"] == (6, 5, 3)
    np.testing.assert_array_equal(calls["unary"][0], -scores[0].reshape(3, -1))
    assert calls["gaussian"] == pytest.approx(want["gaussian"])
    assert calls["bilateral"][:3] == pytest.approx(want["bilateral"])
    np.testing.assert_array_equal(calls["bilateral"][3], images[0])
    assert calls["iterations"] == (10,)


def _patch_case(h=21, w=21):
    """A uniform image whose unary prefers label 0 everywhere but in one pixel."""
    image = np.full((h, w, 3), 128, np.uint8)
    unary = np.zeros((2, h, w), np.float32)
    unary[0] = 1.0
    unary[:, h // 2, w // 2] = [0.0, 1.0]
    return image, unary


def test_test_time_smoothing_removes_an_isolated_pixel_training_scale_does_not():
    """Known answer, no pydensecrf code repeated (positional term alone): at test scale (3 px)
    the neighbours outvote a one-pixel disagreement; divided by 12 (0.25 px) the kernel barely
    reaches a neighbour."""
    image, unary = _patch_case()
    positional = dict(TRAIN, bi_w=0.0)
    test = crf.dense_crf(image, unary, **dict(positional, scale_factor=1.0))
    train = crf.dense_crf(image, unary, **positional)
    assert test[:, 10, 10].argmax() == 0
    assert train[:, 10, 10].argmax() == 1


def test_colour_edges_stop_the_spreading():
    """Bilateral term: a label spreads over pixels of its colour, not across a colour edge."""
    h, w = 16, 16
    image = np.zeros((h, w, 3), np.uint8)
    image[:, w // 2:] = 255                       # left black, right white
    unary = np.zeros((2, h, w), np.float32)
    unary[1, :, 2:4] = 3.0                        # strong label-1 evidence in a black strip
    q = crf.dense_crf(image, unary, **dict(TRAIN, scale_factor=1.0, pos_w=0.0))
    labels = q.argmax(axis=0)
    assert labels[:, : w // 2].mean() > 0.9       # spread over the black half
    assert labels[:, w // 2:].mean() < 0.1        # not into the white half


def test_unary_is_the_negative_energy():
    """Without pairwise terms mean field returns softmax(unary): scores are log-potentials."""
    images, scores = _case(n=1, c=4, h=7, w=9)
    got = crf.dense_crf(images[0], scores[0], **dict(TRAIN, pos_w=0.0, bi_w=0.0))
    e = np.exp(scores[0] - scores[0].max(axis=0))
    np.testing.assert_allclose(got, e / e.sum(axis=0), rtol=1e-5, atol=1e-6)


def test_bad_inputs_are_named():
    images, scores = _case(n=1)
    with pytest.raises(ValueError, match="does not match"):
        crf.dense_crf(images[0][:10], scores[0], **TRAIN)
    with pytest.raises(ValueError, match="uint8"):
        crf.dense_crf(images[0].astype(np.float32), scores[0], **TRAIN)


def _op_forward(images, scores, workers, min_prob=1e-4):
    sym = mx.sym.Custom(mx.sym.Variable("scores"), mx.sym.Variable("small_images"),
                        op_type="sec_crf", workers=workers, min_prob=min_prob, **TRAIN)
    args = {"scores": mx.nd.array(scores), "small_images": mx.nd.array(images)}
    grads = {k: mx.nd.ones(v.shape) for k, v in args.items()}   # must be overwritten with 0
    ex = mx.sym.MakeLoss(mx.sym.sum(sym)).bind(mx.cpu(), args, args_grad=grads)
    ex.forward(is_train=True)
    out = ex.outputs[0]
    ex.backward()
    log_q = mx.sym.Custom(mx.sym.Variable("scores"), mx.sym.Variable("small_images"),
                          op_type="sec_crf", workers=workers, min_prob=min_prob,
                          **TRAIN).bind(
        mx.cpu(), args).forward()[0].asnumpy()
    return log_q, {k: v.asnumpy() for k, v in grads.items()}, out


@pytest.mark.parametrize("workers", [1, 2])
def test_operator_equals_per_image_calls_and_has_zero_gradient(workers):
    images, scores = _case(n=3)
    log_q, grads, _ = _op_forward(images, scores, workers)
    for i in range(len(scores)):
        q = crf.dense_crf(images[i], scores[i], **TRAIN)
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
    serial = crf.batch_crf(images, scores, TRAIN)
    parallel = crf.batch_crf(images, scores, TRAIN, pool=shared_pool(2))
    np.testing.assert_array_equal(serial, parallel)


def test_operator_rejects_mismatched_small_images(capfd):
    """MXNet prints a CustomOp's exception and raises its own; the printed text names it."""
    sym = mx.sym.Custom(mx.sym.Variable("scores"), mx.sym.Variable("small_images"),
                        op_type="sec_crf", min_prob=1e-4, workers=1, **TRAIN)
    with pytest.raises(mx.base.MXNetError):
        sym.infer_shape(scores=(2, 5, 41, 41), small_images=(2, 3, 41, 41))
    assert "small_images has shape (2, 3, 41, 41), expected (N, H, W, 3)" in capfd.readouterr().out
