"""The SEC network at test time: a snapshot's parameters checked against the inference network,
bound for a batch of images. Evaluation and ``eval.py --images`` need nothing else of SEC."""
import mxnet as mx

from cores import checkpoint, stages
from cores.symbols import networks


def load_inference_params(cfg, method, epoch=None, int8_ctx=None):
    """(symbol, arg, aux, epoch) of snapshot ``epoch`` (default: the latest) of segmentation
    method ``method`` (cores/methods/), checked against the inference network. ``int8_ctx``,
    the run's contexts: the network quantized to INT8 instead (cores/quantize.py; cached beside
    the snapshot)."""
    prefix = stages.prefix(cfg, method)
    if epoch is not None and epoch < 1:
        raise checkpoint.CheckpointError("--epoch %d: snapshot epochs start at 1 (leave --epoch "
                                         "out for the latest)" % epoch)
    epoch = epoch or checkpoint.latest_epoch(prefix)
    if not epoch:
        raise checkpoint.CheckpointError("no snapshot %s-NNNN.params; run train_SEC.py%s "
                                         "first" % (prefix, (" " + method.flag).rstrip()))
    symbol = networks.sec_infer_symbol(cfg)
    arg, aux, _ = checkpoint.load_snapshot(prefix, epoch, symbol,
                                           {"data": stages.image_shape(cfg, 1)})
    checkpoint.check_snapshot_config(prefix, epoch, cfg, method)
    if int8_ctx is not None:
        from cores import quantize
        from cores.data.dataset import load_index
        quantize.check_support(int8_ctx)
        _, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
        symbol, arg, aux = quantize.quantized(cfg, symbol, arg, aux,
                                              checkpoint.snapshot_path(prefix, epoch), train,
                                              cfg.TEST_INTERPOLATION == "corners")
    return symbol, arg, aux, epoch


def bind_inference(cfg, ctx, symbol, arg, aux, batch):
    mod = mx.mod.Module(symbol, data_names=["data"], label_names=None, context=ctx)
    mod.bind(data_shapes=[("data", stages.image_shape(cfg, batch))], for_training=False)
    mod.set_params(arg, aux, allow_missing=False, allow_extra=True)
    return mod
