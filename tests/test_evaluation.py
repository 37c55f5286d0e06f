"""eval: flip averaging, test-time CRF equal to dense_crf per image, palette masks, metrics."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from cores import crf, evaluation
from cores.data.iterators import inference_stream
from cores.data.palette import voc_palette
from cores.sec import bind_inference, load_inference_params
from tests.test_training import _cfg, _gt_cues
from cores.sec import train_sec


@pytest.fixture(scope="module")
def snapshot(toy_tree, toy_index, tmp_path_factory):
    """A SEC snapshot (one training step at input 41) to evaluate."""
    cfg = _cfg(toy_tree, toy_index, tmp_path_factory.mktemp("evalwork"), MAX_ITER=1,
               EPOCH_SIZE=1)
    train_sec(cfg, [mx.cpu()], cue_file=_gt_cues(cfg, toy_index[1], 6))
    return cfg


def test_flip_is_the_average_of_the_two_passes(snapshot, toy_index):
    cfg = snapshot
    symbol, arg, aux, _ = load_inference_params(cfg, None)
    entry, data, _, _ = next(inference_stream(cfg, toy_index[1]["val"][:1], workers=1))
    data = data / 100.0          # keep the random network's softmax away from saturation
    one = bind_inference(cfg, [mx.cpu()], symbol, arg, aux, 1)
    two = bind_inference(cfg, [mx.cpu()], symbol, arg, aux, 2)
    plain = evaluation.predict_probs(one, data, False)
    mirrored = evaluation.predict_probs(one, np.ascontiguousarray(data[:, :, ::-1]), False)
    flipped = evaluation.predict_probs(two, data, True)
    np.testing.assert_allclose(flipped, 0.5 * (plain + mirrored[:, :, ::-1]), rtol=1e-5,
                               atol=1e-6)
    assert np.abs(flipped - plain).max() > 1e-4          # a generic network is not symmetric


def test_flip_changes_nothing_for_a_mirror_symmetric_network(snapshot, toy_index):
    """With every kernel mirror-symmetric the network commutes with mirroring, so the
    mirrored pass flipped back is the plain pass and --flip equals no flip."""
    cfg = snapshot
    symbol, arg, aux, _ = load_inference_params(cfg, None)
    sym_arg = {k: (0.5 * (v + v[:, :, :, ::-1]) if v.ndim == 4 else v) for k, v in arg.items()}
    _, data, _, _ = next(inference_stream(cfg, toy_index[1]["val"][:1], workers=1))
    plain = evaluation.predict_probs(bind_inference(cfg, [mx.cpu()], symbol, sym_arg, aux, 1),
                                     data, False)
    flipped = evaluation.predict_probs(bind_inference(cfg, [mx.cpu()], symbol, sym_arg, aux, 2),
                                       data, True)
    np.testing.assert_allclose(flipped, plain, rtol=1e-4, atol=1e-6)


def test_crf_masks_equal_dense_crf_per_image(snapshot, toy_index, tmp_path):
    cfg = snapshot
    val = toy_index[1]["val"][:3]
    conf, counted, _ = evaluation.run_inference(cfg, [mx.cpu()], val, use_crf=True,
                                                mask_dir=str(tmp_path), workers=2)
    assert counted == 3 and conf.sum() > 0
    symbol, arg, aux, _ = load_inference_params(cfg, None)
    mod = bind_inference(cfg, [mx.cpu()], symbol, arg, aux, 1)
    palette = voc_palette().ravel().tolist()
    for entry, data, rgb, _ in inference_stream(cfg, val, workers=1):
        probs = evaluation.upsample(evaluation.predict_probs(mod, data, False), *rgb.shape[:2])
        q = crf.dense_crf(np.ascontiguousarray(rgb[:, :, ::-1]),
                          np.log(np.maximum(probs, 1e-5)), scale_factor=1.0, pos_xy_std=3,
                          pos_w=3, bi_xy_std=80, bi_rgb_std=13, bi_w=10, maxiter=10)
        with Image.open(os.path.join(str(tmp_path), entry["id"] + ".png")) as im:
            assert im.mode == "P" and im.getpalette()[:len(palette)] == palette[:len(
                im.getpalette())]
            np.testing.assert_array_equal(np.array(im), q.argmax(axis=0))


def test_evaluate_writes_metrics(snapshot):
    metrics = evaluation.evaluate(snapshot, [mx.cpu()], flip=True, savemask=True)
    out = evaluation.output_dir(snapshot, 1, True, False)
    on_disk = json.load(open(os.path.join(out, "metrics.json")))
    assert on_disk == json.loads(json.dumps(metrics))
    assert set(on_disk["IoU"]) == set(on_disk["classes"]) and on_disk["images"] == 6
    conf = np.array(on_disk["confusion_matrix"])
    assert conf.shape == (5, 5)
    assert on_disk["pixel_accuracy"] == pytest.approx(np.trace(conf) / conf.sum())
    assert on_disk["flags"] == {"flip": True, "crf": False}
    assert len(os.listdir(os.path.join(out, "masks"))) == 6


def test_segment_own_images(snapshot, toy_tree, tmp_path):
    root, ids = toy_tree
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in ids["voc_val"][:2]:
        Image.open(os.path.join(root, "VOCdevkit", "VOC2012", "JPEGImages", i + ".jpg")).save(
            folder / (i + ".png"))
    out = evaluation.segment_images(snapshot, [mx.cpu()], str(folder))
    for i in ids["voc_val"][:2]:
        mask = Image.open(os.path.join(out, "masks", i + ".png"))
        overlay = Image.open(os.path.join(out, "overlays", i + ".png"))
        src = Image.open(folder / (i + ".png"))
        assert mask.mode == "P" and mask.size == src.size
        assert overlay.size == (2 * src.size[0], src.size[1])
