"""DSRG (cores/methods/dsrg.py): its seeded region growing on hand-computed cases, the
``dsrg_grow`` operator that runs it beside the CRF, its two losses, its network and its
solver, and a short run that learns."""
import mxnet as mx
import numpy as np
import pytest

from cores import crf, methods, stages
from cores.config import load_config
from cores.methods import dsrg
from cores.methods.dsrg import batch_refine_and_grow, grow_seeds
from cores.segmentation import train
from cores.symbols import networks, sec_losses
from tests import reference as ref
from tests import test_sec_losses as L
from tests.conftest import gt_cue_file, small_config

dsrg.register_operator()


def _case(c=3, h=6, w=6):
    """All-uncertain probabilities, no seeds, every class present."""
    return (np.zeros((c, h, w), np.float32), np.full((c, h, w), 1.0 / c, np.float32),
            np.ones(c, np.float32))


def _confident(probs, cls, ys, xs, value):
    """Class ``cls`` gets ``value`` at the pixels, the rest shares what is left."""
    others = [k for k in range(len(probs)) if k != cls]
    for y, x in zip(ys, xs):
        probs[:, y, x] = (1 - value) / len(others)
        probs[cls, y, x] = value


def test_a_confident_component_that_touches_a_seed_joins_it_8_connected():
    cues, probs, labels = _case()
    cues[1, 0, 0] = 1
    # a diagonal chain from the seed: 8-connected, not 4-connected
    _confident(probs, 1, [0, 1, 2, 3], [0, 1, 2, 3], 0.9)
    grown = grow_seeds(cues, probs, labels)
    want = np.zeros((6, 6))
    want[[0, 1, 2, 3], [0, 1, 2, 3]] = 1
    np.testing.assert_array_equal(grown[1], want)
    assert grown[0].sum() == 0 and grown[2].sum() == 0


def test_a_component_that_touches_no_seed_stays_out():
    cues, probs, labels = _case()
    cues[1, 0, 0] = 1
    _confident(probs, 1, [0, 0], [0, 1], 0.9)
    _confident(probs, 1, [4, 4, 5], [4, 5, 5], 0.95)         # confident, but no seed in it
    grown = grow_seeds(cues, probs, labels)
    assert grown[1].sum() == 2 and grown[1, 0, 1] == 1 and grown[1, 4:, 4:].sum() == 0


@pytest.mark.parametrize("cls, value, joins", [(1, 0.86, True), (1, 0.84, False),
                                              (0, 0.98, False), (0, 0.995, True)])
def test_the_foreground_and_background_thresholds(cls, value, joins):
    cues, probs, labels = _case()
    cues[cls, 2, 2] = 1
    _confident(probs, cls, [2, 2], [2, 3], value)
    grown = grow_seeds(cues, probs, labels, fg_threshold=0.85, bg_threshold=0.99)
    assert grown[cls, 2, 3] == (1 if joins else 0)
    assert grown[cls, 2, 2] == 1                              # a seed stays a seed


def test_growing_is_not_cumulative_and_absent_classes_never_grow():
    cues, probs, labels = _case()
    cues[2, 0, 0] = 1
    _confident(probs, 2, [0, 0, 0], [0, 1, 2], 0.99)
    first = grow_seeds(cues, probs, labels)
    assert first[2].sum() == 3
    # the next iteration starts from the original cues again: a less confident prediction
    # grows nothing, whatever grew before
    _, flat, _ = _case()
    again = grow_seeds(cues, flat, labels)
    np.testing.assert_array_equal(again, cues)
    np.testing.assert_array_equal(cues[2].sum(), 1)           # the input is left alone
    # class 2 absent from the image labels: its confident pixels are never its seeds
    labels[2] = 0
    assert grow_seeds(cues, probs, labels)[2].sum() == 1


def test_a_pixel_seeded_for_another_class_is_not_taken_but_still_connects():
    cues, probs, labels = _case(h=1, w=5)
    cues[1, 0, 0] = 1
    cues[2, 0, 2] = 1                                         # seed of class 2 in the middle
    _confident(probs, 1, [0] * 5, [0, 1, 2, 3, 4], 0.9)     # class 1 confident everywhere
    grown = grow_seeds(cues, probs, labels)
    np.testing.assert_array_equal(grown[1, 0], [1, 1, 0, 1, 1])
    np.testing.assert_array_equal(grown[2, 0], [0, 0, 1, 0, 0])


def test_the_operator_grows_on_the_floored_crf_marginals_in_its_workers():
    rng = np.random.RandomState(0)
    n, c, h, w = 3, 4, 9, 9
    probs = rng.dirichlet(np.ones(c) * 0.3, size=(n, h, w)).transpose(0, 3, 1, 2)
    probs = probs.astype(np.float32)
    images = rng.randint(0, 255, (n, h, w, 3)).astype(np.float32)
    labels = np.ones((n, c), np.float32)
    labels[1, 2] = 0
    cues = (rng.rand(n, c, h, w) < 0.05).astype(np.float32)
    cfg_params = dict(scale_factor=12.0, pos_xy_std=3.0, pos_w=3.0, bi_xy_std=80.0,
                      bi_rgb_std=13.0, bi_w=10.0, maxiter=10)
    sym = mx.sym.Custom(*(mx.sym.Variable(k) for k in ("u", "i", "l", "c")), op_type="dsrg_grow",
                        min_prob=1e-4, workers=2, fg_threshold=0.85, bg_threshold=0.99,
                        pass_gradient=False, **cfg_params)
    ex = sym.bind(mx.cpu(), {"u": mx.nd.array(probs), "i": mx.nd.array(images),
                             "l": mx.nd.array(labels), "c": mx.nd.array(cues)})
    log_q, grown = (o.asnumpy() for o in ex.forward())
    q = crf.batch_crf(images.astype(np.uint8), probs, cfg_params)
    np.testing.assert_allclose(log_q, crf.floored_log_q(q, 1e-4), atol=1e-5)
    for k in range(n):
        np.testing.assert_array_equal(grown[k], grow_seeds(cues[k], np.exp(log_q[k]), labels[k]))
    assert grown.sum() > cues.sum()                           # something grew
    serial = batch_refine_and_grow(images.astype(np.uint8), probs, labels, cues, cfg_params,
                                   1e-4, 0.85, 0.99)
    np.testing.assert_array_equal(serial[1], grown)


@pytest.mark.parametrize("passes", [False, True])
def test_the_operator_passes_dsrgs_crf_gradient_only_when_asked(passes):
    rng = np.random.RandomState(1)
    n, c, h, w = 2, 3, 5, 5
    probs = rng.dirichlet(np.ones(c), size=(n, h, w)).transpose(0, 3, 1, 2).astype(np.float32)
    inputs = {"u": probs, "i": rng.randint(0, 255, (n, h, w, 3)).astype(np.float32),
              "l": np.ones((n, c), np.float32), "c": np.zeros((n, c, h, w), np.float32)}
    sym = mx.sym.Custom(*(mx.sym.Variable(k) for k in ("u", "i", "l", "c")), op_type="dsrg_grow",
                        min_prob=1e-4, workers=1, fg_threshold=0.85, bg_threshold=0.99,
                        pass_gradient=passes, scale_factor=12.0, pos_xy_std=3.0, pos_w=3.0,
                        bi_xy_std=80.0, bi_rgb_std=13.0, bi_w=10.0, maxiter=10)
    args = {k: mx.nd.array(v) for k, v in inputs.items()}
    grads = {k: mx.nd.ones(v.shape) for k, v in inputs.items()}
    ex = sym[0].bind(mx.cpu(), args, args_grad=grads)
    log_q = ex.forward(is_train=True)[0].asnumpy()
    head = rng.randn(*log_q.shape).astype(np.float32)
    ex.backward(mx.nd.array(head))
    want = (1 - np.exp(log_q)) * head if passes else np.zeros_like(head)
    np.testing.assert_allclose(grads["u"].asnumpy(), want, rtol=1e-5, atol=1e-6)
    for k in ("i", "l", "c"):
        assert not grads[k].asnumpy().any()


def test_balanced_seed_loss_weighs_background_and_foreground_apart():
    """One background seed weighs as much as all the foreground seeds together (the plain
    seeding loss counts seeds alike), and an image without background seeds adds 0 for it."""
    p = np.full((1, 3, 2, 2), 1 / 3.0)
    p[0, :, 0, 0] = [0.5, 0.25, 0.25]
    cues = np.zeros((1, 3, 2, 2))
    cues[0, 0, 0, 0] = 1
    cues[0, 1, 0, 1] = cues[0, 1, 1, 0] = cues[0, 2, 1, 1] = 1
    value, _ = L._run(dsrg.balanced_seed_loss(L.P, L.CUES), dict(p=p, cues=cues))
    assert value == pytest.approx(-np.log(0.5) - np.log(1 / 3.0), rel=1e-12)
    plain, _ = L._run(sec_losses.seed_loss(L.P, L.CUES), dict(p=p, cues=cues))
    assert plain == pytest.approx(-(np.log(0.5) + 3 * np.log(1 / 3.0)) / 4, rel=1e-12)
    cues[0, 0, 0, 0] = 0
    value, _ = L._run(dsrg.balanced_seed_loss(L.P, L.CUES), dict(p=p, cues=cues))
    assert value == pytest.approx(-np.log(1 / 3.0), rel=1e-12)


def test_clipped_constrain_loss_clips_the_ratio_and_its_gradient():
    """Q/p = 100 counts as 20 and passes no gradient; inside the range it is SEC's loss;
    through_crf adds the gradient of log Q, checked against finite differences."""
    p = np.array([[0.009, 0.5], [0.991, 0.5]]).reshape(1, 2, 1, 2)     # two pixels, two classes
    q = np.array([[0.9, 0.6], [0.1, 0.4]]).reshape(1, 2, 1, 2)
    value, grads = L._run(dsrg.clipped_constrain_loss(L.P, L.LOGQ),
                        dict(p=p, log_q=np.log(q)), ["p", "log_q"])
    want = (0.9 * np.log(20) + 0.1 * np.log(0.1 / 0.991) + 0.6 * np.log(1.2)
            + 0.4 * np.log(0.8)) / 2
    assert value == pytest.approx(want, rel=1e-12)
    assert grads["p"][0, 0, 0, 0] == 0                      # clipped: no gradient
    assert grads["p"][0, 1, 0, 0] == pytest.approx(-0.1 / 0.991 / 2, rel=1e-9)
    assert not grads["log_q"].any()                          # Q a constant by default
    _, probs, _, _, log_q = L._random_case((2, 5, 7, 9), seed=4)
    sym = dsrg.clipped_constrain_loss(L.P, L.LOGQ, through_crf=True)
    _, grads = L._run(sym, dict(p=probs, log_q=log_q), ["log_q"])
    coords = L._coords(log_q.shape, np.random.RandomState(5))
    numeric = L._numeric_grad(lambda x: ref.clipped_constrain_loss(probs, x), log_q, coords)
    np.testing.assert_allclose([grads["log_q"][c] for c in coords], numeric, rtol=1e-5,
                               atol=1e-8)


def test_dsrg_symbol_is_balanced_seeding_and_clipped_constrain_on_grown_seeds():
    cfg = load_config(None, [])
    sym = methods.get("dsrg").symbol(cfg)
    assert networks.loss_names(sym) == ["seed_loss", "constrain_loss"]
    internals = sym.get_internals().list_outputs()
    assert "grow_grown" in internals and "grow_log_q" in internals
    assert not any("expand" in n for n in internals)
    arg_shapes, out_shapes, _ = sym.infer_shape(**methods.get("dsrg").input_shapes(cfg, 15, 41))
    assert out_shapes == [(1,), (1,)]
    entry = methods.get("dsrg")
    assert [entry.key(k) for k in ("batch", "lr", "step", "max_iter")] == [
        "BATCH_SIZE_DSRG", "LR_DSRG", "LR_STEP_DSRG", "MAX_ITER_DSRG"]
    schedule = stages.Schedule(cfg, methods.get("dsrg"))           # DSRG's released solver
    assert (schedule.batch_size, schedule.lr, schedule.lr_step, schedule.lr_factor,
            schedule.max_iter, schedule.mirror) == (20, 5e-4, 1000, 0.33, 8000, True)


def test_dsrg_learns_on_the_toy_cues(toy_tree, toy_index, tmp_path):
    """A short DSRG run from random weights on stand-in cues: its seeding loss falls."""
    cfg = small_config(toy_tree, toy_index, tmp_path, MAX_ITER_DSRG=30, EPOCH_SIZE_DSRG=15,
                       BATCH_SIZE_DSRG=4, LR_DSRG=0.01, LR_STEP_DSRG=1000, DATA_WORKERS=1,
                       CRF_WORKERS=1)
    cue_file = gt_cue_file(cfg, toy_index[1], 6)
    history = train(cfg, methods.get("dsrg"), [mx.cpu()], cue_file=cue_file)
    assert len(history) == 30
    first = np.mean([h["seed_loss"] for h in history[:5]])
    last = np.mean([h["seed_loss"] for h in history[-5:]])
    assert last < 0.8 * first, (first, last)
