"""The two cue stages (spec 3): train the saliency (background) and CAM (foreground) networks,
then turn them into localization cues for every training image."""
import logging
import math
import os

import mxnet as mx
import numpy as np
from tqdm import tqdm

from cores import checkpoint, cues
from cores.data.dataset import load_index, read_mask
from cores.data.iterators import inference_stream, multilabel_iter
from cores.data.transforms import load_rgb, resize_rgb
from cores.distributed import Cluster
from cores.symbols import networks
from cores.train import fit, multilabel_loss
from cores.visualize import cue_picture

STAGES = {
    "bg": dict(name="saliency", train_symbol=networks.saliency_train_symbol, lr="LR_BG",
               step="LR_STEP_BG", max_iter="MAX_ITER_BG", epoch="EPOCH_SIZE_BG",
               batch="BATCH_SIZE_BG"),
    "fg": dict(name="cam", train_symbol=networks.cam_train_symbol, lr="LR_FG",
               step="LR_STEP_FG", max_iter="MAX_ITER_FG", epoch="EPOCH_SIZE_FG",
               batch="BATCH_SIZE_FG"),
    "pretrain": dict(name="pretrain", train_symbol=networks.classifier_train_symbol,
                     lr="LR_PRE", step="LR_STEP_PRE", max_iter="MAX_ITER_PRE",
                     epoch="EPOCH_SIZE_PRE", batch="BATCH_SIZE_PRE"),
}


def score_size(cfg):
    """Side of the score map for INPUT_SIZE (41 for 321)."""
    sym = networks.sec_scores(cfg, mx.sym.Variable("data"))
    return sym.infer_shape(data=(1, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE))[1][0][2]


def stage_prefix(cfg, kind):
    return os.path.join(cfg.SNAPSHOT_PATH, "%s_%s" % (STAGES[kind]["name"], cfg.BASE_NET))


def cue_path(cfg, kind):
    return os.path.join(cfg.CACHE_PATH, "%s_cues.npz" % kind)


def final_epoch(cfg, kind):
    s = STAGES[kind]
    return math.ceil(cfg[s["max_iter"]] / cfg[s["epoch"]])


def train_cue_network(cfg, kind, ctx, entries, resume=False, cluster=None):
    """Train the saliency ('bg') or CAM ('fg') network; returns the final snapshot's epoch."""
    s = STAGES[kind]
    prefix = stage_prefix(cfg, kind)
    os.makedirs(cfg.SNAPSHOT_PATH, exist_ok=True)
    symbol = s["train_symbol"](cfg)
    batch = cfg[s["batch"]]
    shapes = {"data": (batch, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE),
              "label": (batch, cfg.CLASS_NUM - 1)}
    begin, state = 0, None
    if resume and checkpoint.latest_epoch(prefix):
        begin = checkpoint.latest_epoch(prefix)
        arg, aux, state = checkpoint.load_snapshot(prefix, begin, symbol, shapes)
        logging.info("resuming %s from epoch %d", prefix, begin)
    else:
        arg, aux = checkpoint.pretrained_params(cfg, symbol, shapes)
    it = multilabel_iter(cfg, entries, batch, cfg[s["epoch"]], start_batch=begin * cfg[s["epoch"]],
                         cluster=cluster)
    try:
        fit(cfg, symbol, it, ctx, prefix, cfg[s["lr"]], cfg[s["step"]], cfg[s["max_iter"]],
            cfg[s["epoch"]], multilabel_loss, arg, aux, begin, state, cluster=cluster)
    finally:
        it.close()
    return final_epoch(cfg, kind)


def _batched(stream, batch_size):
    chunk = []
    for item in stream:
        chunk.append(item)
        if len(chunk) == batch_size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _stack(chunk, batch_size):
    """Data of a possibly short last batch, padded by repeating its last image."""
    data = np.stack([c[1] for c in chunk] + [chunk[-1][1]] * (batch_size - len(chunk)))
    return mx.io.DataBatch([mx.nd.array(data)])


def _bind(symbol, ctx, data_name, shape, arg, aux, need_grad=False):
    mod = mx.mod.Module(symbol, data_names=[data_name], label_names=None, context=ctx)
    mod.bind(data_shapes=[(data_name, shape)], for_training=need_grad,
             inputs_need_grad=need_grad)
    mod.set_params(arg, aux, allow_missing=False, allow_extra=True)
    return mod


def bg_cues_for(cfg, ctx, arg, aux, entries, batch_size):
    """{id: (3, M)} background cues: saliency = d(sum of class scores)/d(saliency-layer
    pre-activation), max |.| over channels, 3x3 median, lowest BG_FRACTION (spec 3)."""
    front, back = networks.saliency_parts(cfg)
    size = cfg.INPUT_SIZE
    front_mod = _bind(front, ctx, "data", (batch_size, 3, size, size), arg, aux)
    feat_shape = front.infer_shape(data=(batch_size, 3, size, size))[1][0]
    back_mod = _bind(back, ctx, "saliency_input", feat_shape, arg, aux, need_grad=True)
    ones = mx.nd.ones((batch_size, cfg.CLASS_NUM - 1))
    out = {}
    stream = inference_stream(cfg, [dict(e, mask=None) for e in entries])
    for chunk in tqdm(_batched(stream, batch_size), total=math.ceil(len(entries) / batch_size),
                      desc="background cues"):
        front_mod.forward(_stack(chunk, batch_size), is_train=False)
        preact = front_mod.get_outputs()[0]
        back_mod.forward(mx.io.DataBatch([preact]), is_train=True)
        back_mod.backward([ones])
        grad = back_mod.get_input_grads()[0].asnumpy()
        for k, (entry, _, _, _) in enumerate(chunk):
            bg = cues.bg_cue_rule(cues.saliency_map(grad[k]), cfg.BG_FRACTION,
                                  cfg.BG_MEDIAN_SIZE)
            out[entry["id"]] = cues.masks_to_sparse({0: bg})
    return out


def fg_cues_for(cfg, ctx, arg, aux, entries, batch_size):
    """{id: (3, M)} foreground cues: CAM_c > FG_THRESHOLD max CAM_c per labelled class."""
    size = cfg.INPUT_SIZE
    mod = _bind(networks.cam_symbol(cfg), ctx, "data", (batch_size, 3, size, size), arg, aux)
    out = {}
    stream = inference_stream(cfg, [dict(e, mask=None) for e in entries])
    for chunk in tqdm(_batched(stream, batch_size), total=math.ceil(len(entries) / batch_size),
                      desc="foreground cues"):
        mod.forward(_stack(chunk, batch_size), is_train=False)
        cams = mod.get_outputs()[0].asnumpy()
        for k, (entry, _, _, _) in enumerate(chunk):
            masks = cues.fg_cue_rule(cams[k], entry["labels"], cfg.FG_THRESHOLD)
            out[entry["id"]] = cues.masks_to_sparse(masks)
    return out


def report_cues(cfg, kind, cue_set, size, entries, classes, vis=0):
    """Print and save the cue report; write ``vis`` pictures (image | cues | ground truth)."""
    report = cues.cue_report(cue_set, size, entries, classes, read_mask)
    name = kind if kind.endswith("cues") else "%s_cues" % kind
    cues.save_report(os.path.join(cfg.CACHE_PATH, "%s_report.json" % name), report)
    logging.info("%s cue report\n%s", kind, cues.format_report(report))
    for entry in entries[:vis]:
        gt = cues.grid_mask(read_mask(entry["mask"]), size) if entry.get("mask") else None
        rgb = resize_rgb(load_rgb(entry["image"]), cfg.INPUT_SIZE).astype(np.uint8)
        cue_picture(os.path.join(cfg.CACHE_PATH, "vis_%s" % kind, entry["id"] + ".png"), rgb,
                    cues.cue_label_map(cue_set[entry["id"]], size), gt)
    return report


def run_cue_stage(cfg, kind, ctx, skip_train=False, resume=False, epoch=None, vis=0,
                  cluster=None):
    """Train (unless skipped) and write CACHE_PATH/<kind>_cues.npz for every train_aug image;
    returns the cue report (None on workers other than rank 0). Under a distributed kvstore
    each worker computes the cues of its share of the images and rank 0 merges the shares."""
    cluster = cluster or Cluster()
    classes, train, _ = load_index(cfg.DATASET_PATH, cfg.CLASS_NUM)
    kind_cfg = STAGES[kind]
    if not skip_train:
        last = train_cue_network(cfg, kind, ctx, train, resume, cluster)
    else:
        last = epoch or checkpoint.latest_epoch(stage_prefix(cfg, kind))
        if not last:
            raise checkpoint.CheckpointError(
                "--skip-train: no snapshot %s-NNNN.params to start from"
                % stage_prefix(cfg, kind))
    if epoch:
        last = epoch
    batch = cfg[kind_cfg["batch"]]
    symbol = kind_cfg["train_symbol"](cfg)
    shapes = {"data": (batch, 3, cfg.INPUT_SIZE, cfg.INPUT_SIZE),
              "label": (batch, cfg.CLASS_NUM - 1)}
    arg, aux, _ = checkpoint.load_snapshot(stage_prefix(cfg, kind), last, symbol, shapes)
    logging.info("writing %s cues with %s", kind, checkpoint.snapshot_path(
        stage_prefix(cfg, kind), last))
    extract = bg_cues_for if kind == "bg" else fg_cues_for
    mine = cluster.my_share(train)
    cue_set = extract(cfg, ctx, arg, aux, mine, batch)
    size = score_size(cfg)
    if cluster.num_workers > 1:
        part = "%s.part%d-of-%d.npz" % (cue_path(cfg, kind)[:-4], cluster.rank,
                                        cluster.num_workers)
        cues.save_cues(part, cue_set, size)
        cluster.barrier()
        if not cluster.is_root:
            return None
        cue_set = merge_shares(cue_path(cfg, kind), cluster.num_workers, [e["id"] for e in train])
    cues.save_cues(cue_path(cfg, kind), cue_set, size)
    logging.info("wrote %s (%d images)", cue_path(cfg, kind), len(cue_set))
    return report_cues(cfg, kind, cue_set, size, train, classes, vis)


def merge_shares(path, num_workers, ids):
    """The workers' cue files for ``path`` merged into one dict; every id exactly once."""
    merged = {}
    parts = ["%s.part%d-of-%d.npz" % (path[:-4], r, num_workers) for r in range(num_workers)]
    for part in parts:
        share, _ = cues.load_cues(part)
        twice = set(share) & set(merged)
        if twice:
            raise ValueError("%s repeats images of another share, e.g. %s" % (part,
                                                                            sorted(twice)[:5]))
        merged.update(share)
    if set(merged) != set(ids):
        missing = sorted(set(ids) - set(merged))
        raise ValueError("the cue shares miss %d images, e.g. %s" % (len(missing), missing[:5]))
    for part in parts:
        os.remove(part)
    return merged
