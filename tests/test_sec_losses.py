"""The losses against float64 numpy evaluations of the spec, gradients against central
finite differences: SEC's three (cores/symbols/sec_losses.py) and DSRG's two
(cores/methods/dsrg.py; their own cases are in test_dsrg.py)."""
import mxnet as mx
import numpy as np
import pytest

from cores.methods import dsrg
from cores.symbols import sec_losses
from tests import reference as ref

SHAPES = [(1, 5, 7, 9), (3, 5, 7, 9), (2, 21, 7, 9), (2, 21, 41, 41)]


def _run(sym, inputs, grad_names=()):
    """Forward (and backward of the scalar output) in float64; returns (value, grads)."""
    args = {k: mx.nd.array(v, dtype="float64") for k, v in inputs.items()}
    grads = {k: mx.nd.zeros(v.shape, dtype="float64") for k, v in inputs.items()}
    req = {k: ("write" if k in grad_names else "null") for k in inputs}
    ex = sym.bind(mx.cpu(), args, args_grad=grads, grad_req=req)
    ex.forward(is_train=True)
    value = ex.outputs[0].asnumpy()
    ex.backward(mx.nd.ones(value.shape, dtype="float64"))
    return float(value.ravel()[0]), {k: grads[k].asnumpy() for k in grad_names}


def _random_case(shape, seed):
    rng = np.random.RandomState(seed)
    n, c, h, w = shape
    scores = rng.randn(n, c, h, w) * 2
    probs = ref.softmax_with_floor(scores)
    cues = (rng.rand(n, c, h, w) < 0.05).astype(np.float64)
    labels = (rng.rand(n, c) < 0.4).astype(np.float64)
    labels[:, 0] = 1
    log_q = np.log(ref.softmax_with_floor(rng.randn(n, c, h, w) * 3))
    return scores, probs, cues, labels, log_q


def _numeric_grad(f, x, coords, eps=1e-6, relative=False):
    """Central differences; ``relative`` steps by eps*|x| (probabilities near the 1e-4 floor)."""
    out = []
    for idx in coords:
        step = eps * abs(x[idx]) if relative else eps
        x_plus, x_minus = x.copy(), x.copy()
        x_plus[idx] += step
        x_minus[idx] -= step
        out.append((f(x_plus) - f(x_minus)) / (2 * step))
    return np.array(out)


def _coords(shape, rng, k=40):
    flat = rng.choice(int(np.prod(shape)), size=min(k, int(np.prod(shape))), replace=False)
    return [np.unravel_index(i, shape) for i in flat]


P, CUES, LABELS, LOGQ, F = (mx.sym.Variable(n) for n in ("p", "cues", "labels", "log_q", "f"))
LOSSES = {
    "seed": (lambda p: sec_losses.seed_loss(p, CUES),
             lambda p, case: ref.seed_loss(p, case["cues"])),
    "expand": (lambda p: sec_losses.expand_loss(p, LABELS),
               lambda p, case: ref.expand_loss(p, case["labels"])),
    "constrain": (lambda p: sec_losses.constrain_loss(p, LOG_Q_SYM),
                  lambda p, case: ref.constrain_loss(p, case["log_q"])),
    # DSRG's (cores/methods/dsrg.py)
    "balanced_seed": (lambda p: dsrg.balanced_seed_loss(p, CUES),
                      lambda p, case: ref.balanced_seed_loss(p, case["cues"])),
    "clipped_constrain": (lambda p: dsrg.clipped_constrain_loss(p, LOG_Q_SYM),
                          lambda p, case: ref.clipped_constrain_loss(p, case["log_q"])),
}
LOG_Q_SYM = LOGQ


def _case_inputs(name, case):
    extra = {"seed": "cues", "expand": "labels", "constrain": "log_q", "balanced_seed": "cues",
             "clipped_constrain": "log_q"}[name]
    return {extra: case[extra]}


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("shape", SHAPES)
def test_forward_and_grad_wrt_probs(name, shape):
    scores, probs, cues, labels, log_q = _random_case(shape, seed=sum(shape))
    case = dict(cues=cues, labels=labels, log_q=log_q)
    build, reference = LOSSES[name]
    inputs = dict(p=probs, **_case_inputs(name, case))
    value, grads = _run(build(P), inputs, ["p"])
    assert value == pytest.approx(reference(probs, case), rel=1e-9, abs=1e-12)
    rng = np.random.RandomState(1)
    coords = _coords(probs.shape, rng)
    # put some checked coordinates on cue pixels, where the seed loss gradient is non-zero
    coords += [tuple(i) for i in np.argwhere(cues > 0)[:10]]
    numeric = _numeric_grad(lambda x: reference(x, case), probs, coords, eps=1e-5,
                             relative=True)
    analytic = np.array([grads["p"][c] for c in coords])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("shape", [(2, 5, 7, 9), (1, 21, 41, 41)])
def test_end_to_end_grad_wrt_scores(name, shape):
    scores, _, cues, labels, log_q = _random_case(shape, seed=7)
    case = dict(cues=cues, labels=labels, log_q=log_q)
    build, reference = LOSSES[name]
    sym = build(sec_losses.softmax_with_floor(F, 1e-4))
    value, grads = _run(sym, dict(f=scores, **_case_inputs(name, case)), ["f"])
    assert value == pytest.approx(reference(ref.softmax_with_floor(scores), case), rel=1e-9)
    coords = _coords(scores.shape, np.random.RandomState(2), k=30)
    numeric = _numeric_grad(lambda x: reference(ref.softmax_with_floor(x), case), scores, coords)
    analytic = np.array([grads["f"][c] for c in coords])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)


def test_softmax_with_floor_matches_formula():
    scores = np.random.RandomState(0).randn(2, 21, 7, 9) * 30   # extreme scores hit the floor
    value = mx.sym.Group([sec_losses.softmax_with_floor(F, 1e-4)]).bind(
        mx.cpu(), {"f": mx.nd.array(scores, dtype="float64")}).forward()[0].asnumpy()
    np.testing.assert_allclose(value, ref.softmax_with_floor(scores, 1e-4), rtol=1e-12)
    assert value.min() >= 1e-4 / (1 + 21e-4) * (1 - 1e-12)
    np.testing.assert_allclose(value.sum(axis=1), 1.0, rtol=1e-12)


def test_constrain_loss_passes_no_gradient_to_crf_input():
    _, probs, _, _, log_q = _random_case((2, 5, 7, 9), seed=3)
    sym = sec_losses.constrain_loss(P, LOGQ)
    _, grads = _run(sym, dict(p=probs, log_q=log_q), ["p", "log_q"])
    assert np.all(grads["log_q"] == 0)
    assert np.abs(grads["p"]).max() > 0


@pytest.mark.parametrize("which", ["everywhere", "nowhere", "all_fg_present", "no_fg_present"])
def test_expand_loss_finite_in_extreme_cases(which):
    n, c, h, w = 2, 5, 7, 9
    scores = np.full((n, c, h, w), -50.0)
    labels = np.zeros((n, c))
    labels[:, 0] = 1
    if which == "everywhere":      # class 2 takes every pixel, and is labelled
        scores[:, 2] = 50.0
        labels[:, 2] = 1
    elif which == "nowhere":       # class 3 is labelled but has the floor probability everywhere
        scores[:, 0] = 50.0
        labels[:, 3] = 1
    elif which == "all_fg_present":
        labels[:] = 1
        scores = np.random.RandomState(0).randn(n, c, h, w)
    else:
        scores = np.random.RandomState(0).randn(n, c, h, w)
    sym = sec_losses.expand_loss(sec_losses.softmax_with_floor(F), LABELS)
    value, grads = _run(sym, dict(f=scores, labels=labels), ["f"])
    assert np.isfinite(value) and np.all(np.isfinite(grads["f"]))
    assert value == pytest.approx(ref.expand_loss(ref.softmax_with_floor(scores), labels),
                                  rel=1e-9)


def test_seed_loss_ignores_images_without_cues():
    _, probs, cues, _, _ = _random_case((2, 5, 7, 9), seed=4)
    cues[1] = 0
    value, grads = _run(sec_losses.seed_loss(P, CUES), dict(p=probs, cues=cues), ["p"])
    assert np.isfinite(value)
    assert value == pytest.approx(-np.sum(cues[0] * np.log(probs[0])) / cues[0].sum() / 2)
    assert np.all(grads["p"][1] == 0)


def test_gwrp_weights_follow_the_shape():
    """GWRP with q=1 is the mean, with q->0 the max, whatever the number of pixels."""
    x = np.random.RandomState(5).rand(2, 3, 11)
    for q, expected in [(1.0, x.mean(axis=2)), (1e-12, x.max(axis=2))]:
        out = sec_losses.gwrp(mx.sym.Variable("x"), q).bind(
            mx.cpu(), {"x": mx.nd.array(x, dtype="float64")}).forward()[0].asnumpy()
        np.testing.assert_allclose(out, expected, rtol=1e-9)
