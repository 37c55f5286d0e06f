"""--int8: the quantized SEC and CAM networks against fp32, the cache beside the snapshot, and
the one-line refusal where oneDNN cannot run. Marked slow: each trains and quantizes a
network (left out of make test-fast)."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from cores import checkpoint, evaluation, quantize, stages
from cores.data.iterators import inference_stream
from cores.inference import bind_inference, load_inference_params
from cores.localization import run_cue_stage
from cores import methods
from cores.segmentation import train
from tests.conftest import gt_cue_file, small_config


@pytest.fixture(scope="module")
def snapshot(toy_tree, toy_index, tmp_path_factory):
    """A SEC snapshot (8 training steps at input 81) and its config; 6 calibration images."""
    cfg = small_config(toy_tree, toy_index, tmp_path_factory.mktemp("int8"), INPUT_SIZE=81,
                       MAX_ITER=8, EPOCH_SIZE=8, INT8_CALIB_IMAGES=6)
    train(cfg, methods.get("sec"), [mx.cpu()], cue_file=gt_cue_file(cfg, toy_index[1], 11))
    return cfg


def _scores(cfg, symbol, arg, aux, entries):
    mod = bind_inference(cfg, [mx.cpu()], symbol, arg, aux, 1)
    out = []
    for _, data, _, _ in inference_stream(cfg, entries, workers=1, corners=True):
        mod.forward(mx.io.DataBatch([mx.nd.array(data[None])]), is_train=False)
        out.append(mod.get_outputs()[0].asnumpy()[0])
    return np.stack(out)


@pytest.mark.slow
def test_int8_scores_agree_with_fp32(snapshot, toy_index, tmp_path):
    """The class scores (before the softmax, which would hide errors in saturation) of the
    quantized network: within 10 % of the scores' spread of fp32 on average, and the argmax
    of >= 95 % of the score cells unchanged (measured: see the message)."""
    from cores.symbols import networks
    cfg = snapshot
    symbol, arg, aux, _ = load_inference_params(cfg, methods.get("sec"))
    scores = networks.sec_scores(cfg, mx.sym.Variable("data"), dropout=False)
    snap = str(tmp_path / "scores-0001.params")            # a cache of its own
    mx.nd.save(snap, {"arg:" + k: v for k, v in arg.items()})
    qsym, qarg, qaux = quantize.quantized(cfg, scores, arg, aux, snap, toy_index[1]["train"])
    ops = {n["op"] for n in json.loads(qsym.tojson())["nodes"]}
    assert "_contrib_quantize_v2" in ops and "_sg_mkldnn_conv" in ops   # really quantized
    val = toy_index[1]["val"]
    fp32 = _scores(cfg, scores, arg, aux, val)
    int8 = _scores(cfg, qsym, qarg, qaux, val)
    assert int8.shape == fp32.shape
    error = np.abs(int8 - fp32).mean() / fp32.std()
    same = (int8.argmax(axis=1) == fp32.argmax(axis=1)).mean()
    assert error < 0.1 and same >= 0.95, "mean error / spread %.4f, argmax same %.4f" % (
        error, same)


@pytest.mark.slow
def test_the_cache_is_reused_and_rebuilt_when_its_inputs_change(snapshot, toy_index,
                                                                 monkeypatch):
    cfg = snapshot
    load_inference_params(cfg, methods.get("sec"), int8_ctx=[mx.cpu()])
    path = checkpoint.snapshot_path(stages.prefix(cfg, methods.get("sec")), 1)
    sym_path, params_path, meta_path = quantize.cache_paths(path)
    meta = json.load(open(meta_path))
    assert meta["calib_mode"] == "entropy" and len(meta["calib_images"]) == 6
    built = []
    from mxnet.contrib import quantization
    real = quantization.quantize_model_mkldnn
    monkeypatch.setattr(quantization, "quantize_model_mkldnn",
                        lambda *a, **k: built.append(k["num_calib_examples"]) or real(*a, **k))
    load_inference_params(cfg, methods.get("sec"), int8_ctx=[mx.cpu()])
    assert built == []                                              # reused
    naive = type(cfg)(cfg, INT8_CALIB_MODE="naive")                 # (quicker to build)
    load_inference_params(naive, methods.get("sec"), int8_ctx=[mx.cpu()])
    assert built == [6]                                             # the mode changed
    changed = type(cfg)(naive, INT8_CALIB_IMAGES=4)
    load_inference_params(changed, methods.get("sec"), int8_ctx=[mx.cpu()])
    assert built == [6, 4]                                          # the images changed
    meta = json.load(open(meta_path))
    assert len(meta["calib_images"]) == 4 and meta["calib_mode"] == "naive"
    stat = os.stat(path)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10 ** 9))  # a new snapshot
    load_inference_params(changed, methods.get("sec"), int8_ctx=[mx.cpu()])
    assert built == [6, 4, 4]
    os.remove(meta_path)                                            # a build killed midway
    load_inference_params(changed, methods.get("sec"), int8_ctx=[mx.cpu()])
    assert built == [6, 4, 4, 4]
    assert not [f for f in os.listdir(os.path.dirname(path)) if ".tmp" in f]


@pytest.mark.slow
def test_eval_int8_writes_its_own_metrics(snapshot):
    metrics = evaluation.evaluate(snapshot, methods.get("sec"), [mx.cpu()], flip=True, use_crf=True, int8=True)
    out = stages.output_dir(snapshot, 1, methods.get("sec"), True, True, int8=True)
    assert out.endswith("_flip_crf_int8")
    assert json.load(open(os.path.join(out, "metrics.json")))["flags"]["int8"] is True
    fp32 = evaluation.evaluate(snapshot, methods.get("sec"), [mx.cpu()], flip=True, use_crf=True)
    assert abs(metrics["mIoU"] - fp32["mIoU"]) < 0.05


@pytest.mark.slow
def test_unsupported_setups_are_refused_in_one_line(snapshot, monkeypatch):
    with pytest.raises(quantize.Int8Error, match="CPU only.*gpu"):
        quantize.check_support([mx.gpu(0)])

    class NoOneDNN:
        def is_enabled(self, name):
            return False
    monkeypatch.setattr(mx.runtime, "Features", NoOneDNN)
    with pytest.raises(quantize.Int8Error, match="needs MXNet built with oneDNN"):
        evaluation.evaluate(snapshot, methods.get("sec"), [mx.cpu()], int8=True)


@pytest.mark.slow
def test_int8_foreground_cues_report_their_agreement(toy_tree, toy_index, tmp_path):
    cfg = small_config(toy_tree, toy_index, tmp_path, INPUT_SIZE=81, MIN_CLASSIFIER_MAP=0,
                       BATCH_SIZE_FG=2, EPOCH_SIZE_FG=4, MAX_ITER_FG=8, INT8_CALIB_IMAGES=6,
                       INT8_CHECK_IMAGES=8)
    report = run_cue_stage(cfg, stages.CAM, [mx.cpu()], int8=True)
    agreement = report["int8_agreement"]
    assert set(agreement) == {"background", "aeroplane", "bicycle", "bird", "boat", "all"}
    assert agreement["background"] is None and 0.8 <= agreement["all"] <= 1.0
    on_disk = json.load(open(stages.cue_report_path(cfg, "fg")))
    assert on_disk["int8_agreement"] == pytest.approx(agreement)
    with pytest.raises(Exception, match="background cues need the gradient"):
        run_cue_stage(cfg, stages.SALIENCY, [mx.cpu()], int8=True)


def test_agreement_counts_pixels_of_either_set():
    a = {"x": np.array([[1, 1, 2], [0, 0, 1], [0, 1, 1]])}
    b = {"x": np.array([[1, 2], [0, 1], [0, 1]])}
    got = quantize.agreement(a, b, ["bg", "one", "two"])
    assert got == {"bg": None, "one": 0.5, "two": 1.0, "all": 2 / 3}
