"""The cue stage (cores/localization.py and the cue networks it runs): the saliency gradient's
masking at the pre-activation, and CAM cues at a finer input meeting the score grid."""
import mxnet as mx
import numpy as np
import pytest

from cores import cues, grid
from cores.config import load_config
from cores.symbols import networks


def test_saliency_gradient_is_masked_at_the_pre_activation():
    """d(sum of scores)/d(conv4_1 pre-activation): zero where the ReLU is off, the finite
    difference where it is on."""
    cfg = load_config(overrides=["INPUT_SIZE=33", "WIDTH_MULT=0.0625", "CLASS_NUM=5"])
    front, back = networks.saliency_parts(cfg)
    (shape,) = front.infer_shape(data=(1, 3, 33, 33))[1]
    arg_shapes, _, _ = back.infer_shape(saliency_input=shape)
    rng = np.random.RandomState(0)
    args = {n: mx.nd.array(rng.randn(*s) * 0.3, dtype="float64")
            for n, s in zip(back.list_arguments(), arg_shapes)}
    grad = mx.nd.zeros(shape, dtype="float64")
    ex = back.bind(mx.cpu(), args, args_grad={"saliency_input": grad},
                   grad_req={n: "write" if n == "saliency_input" else "null" for n in args})
    ex.forward(is_train=True)
    ex.backward(mx.nd.ones((1, 4), dtype="float64"))
    g, x = grad.asnumpy(), args["saliency_input"].asnumpy()
    assert np.all(g[x < 0] == 0) and np.abs(g[x > 0]).max() > 0

    def total(values):
        a = dict(args, saliency_input=mx.nd.array(values, dtype="float64"))
        return back.bind(mx.cpu(), a).forward()[0].asnumpy().sum()

    for idx in [tuple(i) for i in np.argwhere(x > 0.5)[:5]]:
        plus, minus = x.copy(), x.copy()
        plus[idx] += 1e-6
        minus[idx] -= 1e-6
        assert g[idx] == pytest.approx((total(plus) - total(minus)) / 2e-6, rel=1e-4, abs=1e-9)


def test_cam_cues_at_a_finer_input_meet_the_score_grid(toy_tree, toy_index, tmp_path):
    """CAM_INPUT_SCALE k runs the CAM network at input (S-1) k + 1; for a whole k its every
    k-th cell is a score cell, and the cues are the rule on that CAM sampled there. Training
    takes the same input; k = 1 leaves the config as it is."""
    from cores import classifier, localization, stages
    from cores.data.dataset import load_index
    from cores.data.transforms import load_rgb, resize_rgb, to_net_input
    from tests.conftest import toy_config
    cfg = toy_config(toy_tree[0], str(tmp_path), INPUT_SIZE=81, CAM_INPUT_SCALE=2,
                     RANDOM_INIT=True, DATASET_PATH=toy_index[0].DATASET_PATH)
    fine = classifier.net_config(cfg, stages.CAM)
    assert fine.INPUT_SIZE == 161 and fine.CAM_INPUT_SCALE == 2
    bg = classifier.net_config(cfg, stages.SALIENCY)
    assert bg.INPUT_SIZE == 81 and bg.PIXEL_MEAN == cfg.PIXEL_MEAN_CUES
    assert classifier.net_config(type(cfg)(cfg, CAM_INPUT_SCALE=1), stages.CAM).INPUT_SIZE == 81
    assert classifier.net_config(type(cfg)(cfg, CAM_INPUT_SCALE=1.5),
                                 stages.CAM).INPUT_SIZE == 121
    side = stages.score_size(cfg)
    cam = networks.cam_symbol(fine)
    cam_side = cam.infer_shape(data=(1, 3, 161, 161))[1][0][-1]
    assert (side, cam_side) == (11, 21)
    assert list(grid.corner_nearest(cam_side, side)) == list(range(0, 21, 2))
    _, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    entries = [e for e in train if e["labels"]][:3]
    arg_shapes, _, aux_shapes = cam.infer_shape(data=(1, 3, 161, 161))
    rng = np.random.RandomState(0)
    arg = {n: mx.nd.array(rng.normal(0, 0.05, s)) for n, s in
           zip(cam.list_arguments(), arg_shapes) if n != "data"}
    aux = {n: mx.nd.zeros(s) for n, s in zip(cam.list_auxiliary_states(), aux_shapes)}
    got = localization.fg_cues_for(cfg, [mx.cpu()], arg, aux, entries, 2)
    for entry in entries:
        rgb = resize_rgb(load_rgb(entry["image"]), 161)
        data = to_net_input(rgb, cfg.PIXEL_MEAN_CUES, cfg.CHANNEL_ORDER)[None]
        out = cam.bind(mx.cpu(), dict(arg, data=mx.nd.array(data)), aux_states=aux)
        heat = out.forward()[0].asnumpy()[0]
        want = {c: m[::2, ::2] for c, m in cues.fg_cue_rule(
            heat, entry["labels"], cfg.FG_THRESHOLD).items()}
        assert got[entry["id"]].shape[1] > 0
        np.testing.assert_array_equal(got[entry["id"]], cues.masks_to_sparse(want))
