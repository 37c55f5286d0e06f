"""eval: flip averaging, test-time CRF equal to dense_crf per image, palette masks, metrics."""
import json
import os

import mxnet as mx
import numpy as np
import pytest
from PIL import Image

from cores import crf, evaluation, stages
from cores import grid as score_grid
from cores.data.dataset import read_mask
from cores.data.iterators import inference_stream
from cores.data.palette import voc_palette
from cores.inference import bind_inference, load_inference_params
from cores.metrics import error_kinds
from tests.conftest import small_config as _cfg
from cores import methods
from cores.segmentation import train


@pytest.fixture
def snapshot(sec_snapshot):
    """The suite's SEC run (tests/conftest.py) to evaluate."""
    return sec_snapshot


def test_flip_is_the_average_of_the_two_passes(snapshot, toy_index):
    cfg = snapshot
    symbol, arg, aux, _ = load_inference_params(cfg, methods.get("sec"))
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
    symbol, arg, aux, _ = load_inference_params(cfg, methods.get("sec"))
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
    model = load_inference_params(cfg, methods.get("sec"))
    conf, counted = evaluation.run_inference(cfg, [mx.cpu()], val, model, use_crf=True,
                                             mask_dir=str(tmp_path), workers=2)
    assert counted == 3 and conf.sum() > 0
    symbol, arg, aux, _ = model
    mod = bind_inference(cfg, [mx.cpu()], symbol, arg, aux, 1)
    palette = voc_palette().ravel().tolist()
    for entry, data, rgb, _ in inference_stream(cfg, val, workers=1, corners=True):
        probs = score_grid.upsample(evaluation.predict_probs(mod, data, False), *rgb.shape[:2])
        q = crf.dense_crf(rgb,                 # the authors' test time: RGB (method §5)
                          np.log(np.maximum(probs, 1e-5)), scale_factor=1.0, pos_xy_std=3,
                          pos_w=3, bi_xy_std=80, bi_rgb_std=13, bi_w=10, maxiter=10)
        with Image.open(os.path.join(str(tmp_path), entry["id"] + ".png")) as im:
            assert im.mode == "P" and im.getpalette()[:len(palette)] == palette[:len(
                im.getpalette())]
            np.testing.assert_array_equal(np.array(im), q.argmax(axis=0))


@pytest.mark.parametrize("flip", [False, True])
def test_plain_and_flip_masks_equal_the_reference_pipeline(snapshot, toy_index, tmp_path, flip):
    """Without the CRF, eval decodes and post-processes between the passes in this process and
    upsamples only the pixels and classes that can win: the masks and the confusion are those
    of the straightforward serial pipeline (every class upsampled, then argmax)."""
    from cores.metrics import confusion_matrix
    cfg = snapshot
    val = toy_index[1]["val"]
    model = load_inference_params(cfg, methods.get("sec"))
    conf, counted = evaluation.run_inference(cfg, [mx.cpu()], val, model, flip=flip,
                                             mask_dir=str(tmp_path))
    symbol, arg, aux, _ = model
    mod = bind_inference(cfg, [mx.cpu()], symbol, arg, aux, 2 if flip else 1)
    ref_conf = np.zeros_like(conf)
    for entry, data, rgb, mask in inference_stream(cfg, val, workers=1, corners=True):
        pred = score_grid.upsample(evaluation.predict_probs(mod, data, flip),
                                   *rgb.shape[:2]).argmax(axis=0)
        with Image.open(os.path.join(str(tmp_path), entry["id"] + ".png")) as im:
            np.testing.assert_array_equal(np.array(im), pred)
        ref_conf += confusion_matrix(pred.astype(np.uint8), mask, cfg.CLASS_NUM)
    assert counted == len(val)
    np.testing.assert_array_equal(conf, ref_conf)


@pytest.mark.parametrize("corners", [True, False])
def test_label_map_equals_the_argmax_of_every_class_upsampled(monkeypatch, corners):
    """Flat to peaked maps, ties (a uniform map; two equal classes), sizes down to the grid's
    own: the masks of upsampling every class. On the corner grid nothing is upsampled in
    full (only the pixels of undecided blocks are interpolated)."""
    rng = np.random.RandomState(3)
    upsample = score_grid.upsample
    if corners:
        monkeypatch.setattr(score_grid, "upsample", lambda *a: pytest.fail("full upsampling"))
    maps = []
    for scale in (0.5, 3.0, 12.0):
        logits = rng.randn(21, 41, 41) * scale
        logits[rng.randint(1, 21, 3)] += 4 * scale     # a few classes that matter
        maps.append(logits)
    tie = rng.randn(5, 11, 11)
    tie[3] = tie[1]
    maps += [np.zeros((21, 41, 41)), tie, rng.randn(2, 16, 16)]
    for logits in maps:
        probs = np.exp(logits - logits.max(0))
        probs = (probs / probs.sum(0)).astype(np.float32)
        for height, width in ((375, 500), probs.shape[1:], (97, 33)):
            expected = upsample(probs, height, width, corners).argmax(axis=0)
            np.testing.assert_array_equal(
                score_grid.label_map(probs, height, width, corners), expected)


def test_evaluate_writes_metrics(snapshot):
    metrics = evaluation.evaluate(snapshot, methods.get("sec"), [mx.cpu()], flip=True, savemask=True)
    out = stages.output_dir(snapshot, 2, methods.get("sec"), True, False)     # its last epoch
    on_disk = json.load(open(os.path.join(out, "metrics.json")))
    assert on_disk == json.loads(json.dumps(metrics))
    assert set(on_disk["IoU"]) == set(on_disk["classes"]) and on_disk["images"] == 6
    conf = np.array(on_disk["confusion_matrix"])
    assert conf.shape == (5, 5)
    assert on_disk["pixel_accuracy"] == pytest.approx(np.trace(conf) / conf.sum())
    assert on_disk["flags"] == {"flip": True, "crf": False, "supervised": False, "int8": False,
                                "stage": "sec", "scales": [1.0]}
    assert on_disk["errors"] == error_kinds(conf)
    assert len(os.listdir(os.path.join(out, "masks"))) == 6


def test_segment_own_images(snapshot, toy_tree, tmp_path):
    root, ids = toy_tree
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in ids["voc_val"][:2]:
        Image.open(os.path.join(root, "VOCdevkit", "VOC2012", "JPEGImages", i + ".jpg")).save(
            folder / (i + ".png"))
    out = evaluation.segment_images(snapshot, methods.get("sec"), [mx.cpu()], str(folder))
    for i in ids["voc_val"][:2]:
        mask = Image.open(os.path.join(out, "masks", i + ".png"))
        overlay = Image.open(os.path.join(out, "overlays", i + ".png"))
        src = Image.open(folder / (i + ".png"))
        assert mask.mode == "P" and mask.size == src.size
        assert overlay.size == (2 * src.size[0], src.size[1])


def test_upsampling_is_the_authors_zoom():
    """Spec 6: scores are upsampled on scipy.ndimage.zoom(order=1)'s corner-aligned grid;
    OpenCV's half-pixel grid (TEST_INTERPOLATION: half_pixel) is a different map."""
    import scipy.ndimage as ndi
    rng = np.random.RandomState(0)
    probs = rng.rand(5, 11, 11).astype(np.float32)
    for height, width in ((375, 500), (97, 131), (11, 11), (40, 23)):
        ours = score_grid.upsample(probs, height, width)
        ref = ndi.zoom(probs.astype(np.float64), (1, height / 11, width / 11), order=1)
        assert ours.shape == ref.shape == (5, height, width)
        np.testing.assert_allclose(ours, ref, atol=1e-5)
    half = score_grid.upsample(probs, 375, 500, corners=False)
    assert np.abs(half - score_grid.upsample(probs, 375, 500)).max() > 0.05


def test_input_resize_at_test_time_is_the_authors_zoom():
    import scipy.ndimage as ndi
    from cores.data.transforms import resize_rgb
    rgb = np.random.RandomState(1).randint(0, 256, (97, 131, 3)).astype(np.uint8)
    ref = ndi.zoom(rgb.astype(np.float64), (81 / 97, 81 / 131, 1), order=1)
    np.testing.assert_allclose(resize_rgb(rgb, 81, corners=True), ref, atol=1e-3)
    assert np.abs(resize_rgb(rgb, 81) - ref).max() > 1


def test_test_time_crf_gets_the_image_in_rgb_order():
    """Spec 5: the authors' demo hands the RGB image to the CRF; an image whose red and blue
    channels differ gives another result in BGR order (the former choice, still an option)."""
    rng = np.random.RandomState(2)
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[:, :40] = (200, 40, 90)
    rgb[:, 40:] = (90, 40, 200)
    rgb = np.clip(rgb + rng.randint(-30, 30, rgb.shape), 0, 255).astype(np.uint8)
    probs = rng.dirichlet(np.ones(3), size=(60, 80)).transpose(2, 0, 1).astype(np.float32)
    params = dict(scale_factor=1.0, pos_xy_std=3, pos_w=3, bi_xy_std=80, bi_rgb_std=13, bi_w=10,
                  maxiter=10, min_prob=1e-5, channel_order="RGB")
    got = crf.test_time_crf(rgb, probs, params)
    unary = np.log(np.maximum(probs, 1e-5))
    want = crf.dense_crf(rgb, unary, scale_factor=1.0, pos_xy_std=3, pos_w=3, bi_xy_std=80,
                         bi_rgb_std=13, bi_w=10, maxiter=10)
    np.testing.assert_allclose(got, want, rtol=1e-6)
    bgr = crf.test_time_crf(rgb, probs, dict(params, channel_order="BGR"))
    assert np.abs(bgr - got).max() > 1e-3


def test_large_images_run_the_crf_on_a_bounded_copy():
    """The test-time CRF's memory is bounded by CRF_TEST_MAX_SIDE; the result is
    the CRF of the scaled copy (spatial deviations scaled alike), scaled back."""
    import cv2
    from cores.grid import zoom_linear
    rng = np.random.RandomState(3)
    rgb = np.zeros((120, 200, 3), np.uint8)
    rgb[:, 100:] = (200, 60, 30)
    rgb = np.clip(rgb + rng.randint(0, 40, rgb.shape), 0, 255).astype(np.uint8)
    probs = rng.dirichlet(np.ones(2), size=(120, 200)).transpose(2, 0, 1).astype(np.float32)
    params = dict(scale_factor=1.0, pos_xy_std=3, pos_w=3, bi_xy_std=80, bi_rgb_std=13, bi_w=10,
                  maxiter=5, min_prob=1e-5, channel_order="RGB", max_side=100)
    got = crf.test_time_crf(rgb, probs, params)
    assert got.shape == (2, 120, 200)
    small = cv2.resize(rgb, (100, 60), interpolation=cv2.INTER_AREA)
    q = crf.dense_crf(small, np.log(np.maximum(zoom_linear(probs, 60, 100), 1e-5)),
                      scale_factor=2.0, pos_xy_std=3, pos_w=3, bi_xy_std=80, bi_rgb_std=13, bi_w=10,
                      maxiter=5)
    np.testing.assert_allclose(got, zoom_linear(q, 120, 200), rtol=1e-5, atol=1e-6)
    full = crf.test_time_crf(rgb, probs, dict(params, max_side=0))
    assert (full.argmax(0) == got.argmax(0)).mean() > 0.8          # the same segmentation


def test_own_images_skip_unreadable_files(snapshot, toy_tree, tmp_path, caplog):
    """One bad file no longer stops --images; RGBA and grayscale are converted."""
    root, ids = toy_tree
    folder = tmp_path / "mixed"
    folder.mkdir()
    src = os.path.join(root, "VOCdevkit", "VOC2012", "JPEGImages", ids["voc_val"][0] + ".jpg")
    Image.open(src).convert("RGBA").save(folder / "rgba.png")
    Image.open(src).convert("L").save(folder / "gray.png")
    (folder / "broken.jpg").write_bytes(b"this is not a JPEG")
    with caplog.at_level("INFO"):
        out = evaluation.segment_images(snapshot, methods.get("sec"), [mx.cpu()], str(folder))
    masks = os.listdir(os.path.join(out, "masks"))
    assert "gray.png" in masks and "rgba.png" in masks and "broken.png" not in masks
    assert "1 of 3 images could not be read" in caplog.text and "broken.jpg" in caplog.text


def test_epoch_zero_is_refused_not_the_latest(snapshot):
    """--epoch 0 silently meant the latest snapshot."""
    from cores.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="--epoch 0: snapshot epochs start at 1"):
        evaluation.evaluate(snapshot, methods.get("sec"), [mx.cpu()], epoch=0)


def test_sixteen_bit_images_are_scaled_not_saturated(tmp_path):
    """A 16-bit grayscale PNG was clipped to 255 by a plain RGB conversion (half the overlay
    white, one class everywhere); it is scaled by 1/257 and named as a conversion."""
    import cv2
    from cores.data.transforms import read_rgb
    ramp = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), ramp)
    rgb, kind = read_rgb(str(tmp_path / "deep.png"))
    assert kind == "16-bit" and rgb.dtype == np.uint8 and rgb.shape == (32, 32, 3)
    np.testing.assert_array_equal(rgb[:, :, 0], np.round(ramp / 257.0).astype(np.uint8))
    assert (rgb == 255).mean() < 0.01                   # was about half of the image
    Image.fromarray(np.full((4, 4), 0.5, np.float32), mode="F").save(tmp_path / "float.tif")
    rgb, kind = read_rgb(str(tmp_path / "float.tif"))
    assert kind == "32-bit float" and (rgb == 128).all()
    from cores.data.dataset import check_image
    assert check_image(str(tmp_path / "deep.png"))[1] == "I;16"


def test_own_images_count_conversions_and_write_a_legend(snapshot, toy_tree, tmp_path,
                                                         caplog):
    import cv2
    root, ids = toy_tree
    folder = tmp_path / "odd"
    folder.mkdir()
    src = os.path.join(root, "VOCdevkit", "VOC2012", "JPEGImages", ids["voc_val"][0] + ".jpg")
    gray = np.array(Image.open(src).convert("L"), np.uint16) * 257
    cv2.imwrite(str(folder / "deep.png"), gray)
    Image.open(src).convert("CMYK").save(folder / "cmyk.jpg")
    with caplog.at_level("INFO"):
        out = evaluation.segment_images(snapshot, methods.get("sec"), [mx.cpu()], str(folder))
    assert "2 of 2 images are not 8-bit RGB and were converted (16-bit 1, CMYK 1)" in caplog.text
    legend = Image.open(os.path.join(out, "legend.png"))
    assert legend.mode == "RGB" and legend.size[1] >= 22 * snapshot.CLASS_NUM
    colours = {tuple(c) for c in np.array(legend).reshape(-1, 3)}
    assert tuple(voc_palette()[1]) in colours and tuple(voc_palette()[4]) in colours
    assert os.path.join(out, "legend.png") in caplog.text


def test_own_images_all_unreadable_is_an_error(snapshot, tmp_path):
    """'wrote 0 images' and exit status 0 when every input failed."""
    from cores.data.dataset import DatasetError
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("not an image")
    cfg = type(snapshot)(snapshot, OUTPUT_PATH=str(tmp_path / "out"))
    with pytest.raises(DatasetError, match="none of the 2 images.*could be read; nothing was "
                                           "written"):
        evaluation.segment_images(cfg, methods.get("sec"), [mx.cpu()], str(folder))
    assert os.listdir(tmp_path / "out") == []


def test_supervised_own_images_use_the_bound_or_say_it_is_missing(snapshot, toy_tree,
                                                                  tmp_path):
    """--supervised --images silently segmented with the SEC snapshot."""
    from cores.checkpoint import CheckpointError
    root, ids = toy_tree
    folder = tmp_path / "one"
    folder.mkdir()
    Image.open(os.path.join(root, "VOCdevkit", "VOC2012", "JPEGImages",
                            ids["voc_val"][0] + ".jpg")).save(folder / "a.png")
    with pytest.raises(CheckpointError, match="no snapshot .*supervised_vgg16.*--supervised"):
        evaluation.segment_images(snapshot, methods.get("supervised"), [mx.cpu()], str(folder))
    out = evaluation.segment_images(snapshot, methods.get("sec"), [mx.cpu()], str(folder))
    assert os.path.basename(os.path.dirname(out)).startswith("sec_")


def test_early_errors_leave_no_empty_folders(toy_tree, toy_index, tmp_path):
    """SEC before the cue stages, eval before training: the error, and no empty snapshot,
    cache or output folders left behind (the write probe made them)."""
    from cores.checkpoint import CheckpointError
    from cores.cues import CueFileError
    cfg = _cfg(toy_tree, toy_index, tmp_path / "fresh")
    with pytest.raises(CueFileError, match="run train_fg_cues.py first"):
        train(cfg, methods.get("sec"), [mx.cpu()])
    with pytest.raises(CheckpointError, match="run train_SEC.py first"):
        evaluation.evaluate(cfg, methods.get("sec"), [mx.cpu()])
    assert not os.path.exists(tmp_path / "fresh")


def test_multi_scale_averages_each_scale_on_the_score_grid(snapshot, toy_index):
    """TEST_SCALES [1, 2]: the mean of the plain pass and of the pass at input 81 resized to
    the 6x6 grid (each with its mirror); a network whose output is the same everywhere gives
    the single-scale answer at any scales, and [1, 1] is the single scale."""
    cfg = type(snapshot)(snapshot, TEST_SCALES=[1.0, 2.0])
    symbol, arg, aux, _ = load_inference_params(cfg, methods.get("sec"))
    entry, data, rgb, _ = next(inference_stream(cfg, toy_index[1]["val"][:1], workers=1,
                                                corners=True))
    multi = evaluation.MultiScale(cfg, [mx.cpu()], symbol, arg, aux, True)
    assert multi.sizes == [41, 81]
    got = multi(data, rgb)
    from cores.data.transforms import resize_rgb, to_net_input
    big = to_net_input(resize_rgb(rgb, 81, corners=True), cfg.PIXEL_MEAN, cfg.CHANNEL_ORDER)
    mod81 = mx.mod.Module(symbol, data_names=["data"], label_names=None, context=[mx.cpu()])
    mod81.bind(data_shapes=[("data", (2, 3, 81, 81))], for_training=False)
    mod81.set_params(arg, aux, allow_extra=True)
    plain = evaluation.predict_probs(bind_inference(cfg, [mx.cpu()], symbol, arg, aux, 2),
                                     data, True)
    want = 0.5 * (plain + score_grid.zoom_linear(evaluation.predict_probs(mod81, big, True),
                                                 6, 6))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    assert np.abs(got - plain).max() > 1e-4                 # the second scale counted
    constant = {k: (v * 0 if k.endswith("_weight") else v) for k, v in arg.items()}
    constant["fc8_bias"] = mx.nd.array(np.arange(5, dtype=np.float32))
    for scales in ([1.0, 2.0], [0.75, 1.0, 1.25]):
        c = type(cfg)(cfg, TEST_SCALES=scales)
        out = evaluation.MultiScale(c, [mx.cpu()], symbol, constant, aux, False)(data, rgb)
        single = evaluation.predict_probs(bind_inference(c, [mx.cpu()], symbol, constant, aux,
                                                         1), data, False)
        np.testing.assert_allclose(out, single, rtol=1e-5)
    twice = type(cfg)(cfg, TEST_SCALES=[1.0, 1.0])
    np.testing.assert_allclose(
        evaluation.MultiScale(twice, [mx.cpu()], symbol, arg, aux, True)(data, rgb), plain,
        rtol=1e-6)
    assert stages.output_dir(cfg, 1, methods.get("sec"), True, True).endswith("_flip_crf_ms1-2")


def test_label_writes_a_pseudo_mask_per_training_image(snapshot, toy_index, tmp_path):
    cfg = type(snapshot)(snapshot, PSEUDO_MASK_PATH=str(tmp_path / "pseudo"))
    out = evaluation.label_training_set(cfg, methods.get("sec"), [mx.cpu()], flip=True)
    train = toy_index[1]["train"]
    assert sorted(os.listdir(out)) == sorted([e["id"] + ".png" for e in train]
                                             + ["metrics.json"])
    model = load_inference_params(cfg, methods.get("sec"))
    conf, counted = evaluation.run_inference(cfg, [mx.cpu()], train, model, True,
                                             mask_dir=str(tmp_path / "again"))
    for e in train:
        a = np.array(Image.open(os.path.join(out, e["id"] + ".png")))
        b = np.array(Image.open(str(tmp_path / "again" / (e["id"] + ".png"))))
        np.testing.assert_array_equal(a, b)
        assert a.shape == read_mask(e["mask"]).shape       # SBD .mat or VOC PNG
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    assert metrics["scored"] == counted == len(train) and metrics["stage"] == "sec"
    from cores.metrics import iou_scores
    assert metrics["mIoU"] == pytest.approx(iou_scores(conf)[1])
