"""A full SEC training step at a small size on two CPU contexts (data-parallel path)."""
import mxnet as mx
import numpy as np
import pytest

from cores import backbones, methods
from cores.config import load_config
from cores.symbols import networks


@pytest.mark.device
@pytest.mark.parametrize("net", backbones.NAMES)
def test_two_context_training_step(net, device_pair):
    cfg = load_config(overrides=["BASE_NET=" + net, "INPUT_SIZE=65", "WIDTH_MULT=0.0625",
                                 "CRF_WORKERS=1"])
    n, size = 2, 65
    out = networks.sec_scores(cfg, mx.sym.Variable("data")).infer_shape(
        data=(1, 3, size, size))[1][0][2]
    rng = np.random.RandomState(0)
    labels = np.zeros((n, 21), np.float32)
    labels[:, 0] = 1
    labels[0, 3] = labels[1, 7] = 1
    cues = np.zeros((n, 21, out, out), np.float32)
    cues[0, 3, 2:5, 2:5] = cues[1, 7, 4:7, 1:3] = cues[:, 0, 0, :] = 1
    batch = mx.io.DataBatch(
        data=[mx.nd.array(rng.randn(n, 3, size, size) * 50),
              mx.nd.array(rng.randint(0, 256, (n, out, out, 3)))],
        label=[mx.nd.array(labels), mx.nd.array(cues)])
    mod = mx.mod.Module(methods.get("sec").symbol(cfg), data_names=["data", "small_images"],
                        label_names=["labels", "cues"], context=device_pair)
    mod.bind(data_shapes=[("data", (n, 3, size, size)), ("small_images", (n, out, out, 3))],
             label_shapes=[("labels", (n, 21)), ("cues", (n, 21, out, out))])
    mx.random.seed(0)
    mod.init_params(mx.init.Xavier(magnitude=2))
    mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 1e-3,
                                                          "momentum": 0.9, "wd": 5e-4})
    before = mod.get_params()[0]["fc8_weight"].asnumpy()
    mod.forward_backward(batch)
    per_loss = mod.get_outputs(merge_multi_context=False)   # [loss][context]
    assert [len(ctx_outputs) for ctx_outputs in per_loss] == [2, 2, 2]
    values = np.array([[o.asnumpy()[0] for o in ctx_outputs] for ctx_outputs in per_loss])
    mod.update()
    after = mod.get_params()[0]["fc8_weight"].asnumpy()
    assert np.all(np.isfinite(values))
    assert np.all(values > 0)
    assert np.abs(after - before).max() > 0
