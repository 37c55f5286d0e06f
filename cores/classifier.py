"""The multi-label classifiers trained on image labels (method §3): the saliency and CAM
networks of the two cue stages and the pretraining classifier that stands in for ImageNet
weights. Training, the config each network runs with, scoring images, and the checks that a
classifier learned (mAP, a class in every image); the cue stages (cores/localization.py) and
the pretraining (cores/pretrain.py) use them."""
import logging

import mxnet as mx
import numpy as np

from cores import checkpoint, cues, events as event_log, stages
from cores.data.iterators import inference_stream, multilabel_iter
from cores.errors import SECError
from cores.metrics import classification_report
from cores.train import fit, multilabel_loss


def train_symbol(cfg, stage):
    """The training network of a classifier stage: the builder of cores/symbols/networks.py
    that the stage names."""
    from cores.symbols import networks
    return getattr(networks, stage.network)(cfg)


def train_shapes(cfg, batch):
    """The input shapes of a classifier's training network."""
    return {"data": stages.image_shape(cfg, batch), "label": (batch, cfg.CLASS_NUM - 1)}


def train_cue_network(cfg, stage, ctx, entries, resume=False, epoch=None, cluster=None,
                      allow_config_change=False, events=None, overwrite=False, pictures=None):
    """Train classifier ``stage``: the saliency or CAM network, or the pretraining classifier;
    returns the final snapshot's epoch. ``events``: after every epoch, the classification mAP
    of a fixed sample of training images goes there, and ``pictures(iteration, arg, aux)``
    (the cue stage's: a handful of images with their current cues) is called."""
    schedule = stages.Schedule(cfg, stage)
    symbol = train_symbol(cfg, stage)
    net = net_config(cfg, stage)
    start = checkpoint.initial_params(cfg, stage, symbol, train_shapes(net, schedule.batch_size),
                                      resume, epoch, allow_config_change, overwrite,
                                      cluster is None or cluster.is_root)
    it = multilabel_iter(net, entries, schedule.batch_size, schedule.epoch_size,
                         start_batch=start.begin_epoch * schedule.epoch_size, cluster=cluster,
                         mirror=cfg.MIRROR_CUES)
    on_epoch = _epoch_report(cfg, stage, ctx, entries, events, pictures) if events else None
    try:
        fit(cfg, symbol, it, ctx, stages.prefix(cfg, stage), schedule, multilabel_loss, start,
            cluster=cluster, events=events, on_epoch=on_epoch)
    finally:
        it.close()
    return schedule.final_epoch


def _epoch_report(cfg, stage, ctx, entries, events, pictures=None, count=32):
    """An ``on_epoch`` for fit: the mAP of ``count`` fixed training images, then
    ``pictures``."""
    scored = event_log.sample_entries(cfg, entries, count)
    num_classes = cfg.CLASS_NUM

    def on_epoch(epoch, iteration, arg, aux):
        scores = classifier_scores(cfg, stage, ctx, arg, aux, scored)
        labels = np.zeros((len(scored), num_classes - 1))
        for row, entry in enumerate(scored):
            labels[row, np.asarray(entry["labels"], int) - 1] = 1
        report = classification_report(np.stack([scores[e["id"]] for e in scored]), labels,
                                       [str(c) for c in range(1, num_classes)])
        if report["mAP"] is not None:
            events.scalar("mAP_of_%d_train_images" % len(scored), report["mAP"], iteration)
        if pictures is not None:
            pictures(iteration, arg, aux)
    return on_epoch


def batched(stream, batch_size):
    """Lists of ``batch_size`` items of ``stream`` (the last may be shorter)."""
    chunk = []
    for item in stream:
        chunk.append(item)
        if len(chunk) == batch_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def stack_batch(chunk, batch_size):
    """Data of a possibly short last batch, padded by repeating its last image."""
    data = np.stack([c[1] for c in chunk] + [chunk[-1][1]] * (batch_size - len(chunk)))
    return mx.io.DataBatch([mx.nd.array(data)])


def bind_network(symbol, ctx, data_name, shape, arg, aux, need_grad=False):
    mod = mx.mod.Module(symbol, data_names=[data_name], label_names=None, context=ctx)
    mod.bind(data_shapes=[(data_name, shape)], for_training=need_grad,
             inputs_need_grad=need_grad)
    mod.set_params(arg, aux, allow_missing=False, allow_extra=True)
    return mod


def net_config(cfg, stage):
    """The config a classifier stage's network runs with: the pixel mean its ``mean`` key
    names (the cue networks and the pretraining classifier subtract PIXEL_MEAN_CUES, the
    authors' cue notebooks; SEC and the bound PIXEL_MEAN, their training prototxt and demo),
    and the input scale of its ``input_scale`` key. The CAM network takes input
    (INPUT_SIZE - 1) k + 1 for ``CAM_INPUT_SCALE`` k, in training and for cues; its grid is then
    about k times finer than the score grid, and each score cell takes the nearest CAM cell on
    the corner grid (method §3). k = 1 is the authors' (SEC's input); a larger k gives small
    objects more CAM cells, but only with a backbone that recognises them at that scale
    (docs/method.md, section 7)."""
    changes = {}
    if cfg[stage.mean] != cfg.PIXEL_MEAN:
        changes["PIXEL_MEAN"] = cfg[stage.mean]
    k = cfg[stage.input_scale] if stage.input_scale else 1
    if k != 1:
        changes["INPUT_SIZE"] = int(round((cfg.INPUT_SIZE - 1) * k)) + 1
    return type(cfg)(cfg, **changes) if changes else cfg


class LearningError(SECError):
    """A cue network that cannot or did not learn to recognise the classes."""


def check_negatives(entries, classes):
    """Stop before training when a class is in every training image: a classifier then learns
    a constant and its cues cover everything (a one-class data set needs background-only
    images)."""
    counts = np.zeros(len(classes), int)
    for entry in entries:
        counts[np.asarray(entry["labels"], int)] += 1
    always = [classes[c] for c in range(1, len(classes)) if counts[c] == len(entries)]
    if always:
        raise LearningError(
            "class %s is in every one of the %d training images: a classifier cannot tell it "
            "from the background, so its cues would cover whole images. Add images without "
            "it (background-only images: in custom mode list them with an empty label, e.g. "
            "'img.jpg,')" % (", ".join(always), len(entries)))
    never = [classes[c] for c in range(1, len(classes)) if counts[c] == 0]
    if never:
        logging.warning("WARNING: no training image is labelled %s; no cues can be found for "
                        "it", ", ".join(never))


def check_classifier(cfg, name, scores, entries, classes, report_path=None, events=None,
                     step=0):
    """Classification AP of a trained cue network on train_aug (its own training images):
    logged, written to ``report_path`` and ``events`` (at ``step``), and an error when the mAP
    is below MIN_CLASSIFIER_MAP (its cues would be noise). Returns the report."""
    scored = [e for e in entries if e["id"] in scores]
    labels = np.zeros((len(scored), len(classes) - 1))
    for row, entry in enumerate(scored):
        labels[row, np.asarray(entry["labels"], int) - 1] = 1
    report = classification_report(np.stack([scores[e["id"]] for e in scored]), labels,
                                   classes[1:])
    logging.info("%s network, classification AP on %d train_aug images: %s; mAP %s", name,
                 report["images"], ", ".join("%s %s" % (k, "%.3f" % v if v is not None else "-")
                                             for k, v in report["AP"].items()),
                 "%.3f" % report["mAP"] if report["mAP"] is not None else "-")
    if report_path:
        cues.save_report(report_path, report)
    if events and report["mAP"] is not None:
        events.scalar("mAP_of_all_train_images", report["mAP"], step)
    weak = [k for k, v in report["AP"].items() if v is not None and v < cfg.MIN_CLASSIFIER_MAP]
    if report["mAP"] is not None and report["mAP"] < cfg.MIN_CLASSIFIER_MAP:
        raise LearningError(
            "the %s network did not learn to recognise the classes: classification mAP %.3f on "
            "its training images is below MIN_CLASSIFIER_MAP=%.2f, so cues from it would be noise. "
            "Train longer or with a higher learning rate, check the pretrained weights, or "
            "--set MIN_CLASSIFIER_MAP=0 to write them anyway"
            % (name, report["mAP"], cfg.MIN_CLASSIFIER_MAP))
    if weak:
        logging.warning("WARNING: the %s network barely recognises %s (AP < %.2f): expect poor "
                        "cues for them", name, ", ".join(weak), cfg.MIN_CLASSIFIER_MAP)
    return report


def classifier_scores(cfg, stage, ctx, arg, aux, entries):
    """{id: (C-1,)} class scores of a trained multi-label network (the input of its loss)."""
    logits = train_symbol(cfg, stage).get_children()[0]
    batch = stages.Schedule(cfg, stage).batch_size
    net = net_config(cfg, stage)
    mod = bind_network(logits, ctx, "data", stages.image_shape(net, batch), arg, aux)
    out = {}
    stream = inference_stream(net, [dict(e, mask=None) for e in entries])
    for chunk in batched(stream, batch):
        mod.forward(stack_batch(chunk, batch), is_train=False)
        values = mod.get_outputs()[0].asnumpy()
        for k, (entry, _, _, _) in enumerate(chunk):
            out[entry["id"]] = values[k]
    return out
