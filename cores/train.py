"""One fit loop for the saliency, CAM and SEC stages: devices, SGD with Caffe's step schedule,
per-epoch snapshots with optimizer state, resume, NaN guard, logs and a loss history."""
import json
import logging
import math
import os
import time

import mxnet as mx
import numpy as np
from tqdm import tqdm

from cores import checkpoint, figures, stages
from cores.denormals import flush_denormals
from cores.errors import SECError
from cores.io import atomic_write_text


class TrainingError(SECError):
    """Training cannot go on (a non-finite loss); the message names the batch's images."""


def _optimizer_state(mod):
    """Momentum per parameter name (devices hold identical copies: keep one)."""
    updater = mod._updater
    if updater is None:
        return {}
    idx2name = mod._optimizer.idx2name
    out = {}
    for index, state in updater.states.items():
        name = idx2name.get(index)
        if name is not None and name not in out and isinstance(state, mx.nd.NDArray):
            out[name] = state.copyto(mx.cpu())
    return out


def _restore_optimizer_state(mod, saved):
    updater = mod._updater
    for index, name in mod._optimizer.idx2name.items():
        if name in saved:
            updater.states[index] = saved[name].copy()
            updater.states_synced[index] = False


def remove_stale_temporaries(prefix):
    """Delete the temporary files a killed run left beside ``prefix``'s snapshots (atomic writes
    never leave one otherwise); returns their names."""
    import glob
    folder, base = os.path.split(prefix)
    stale = glob.glob(os.path.join(folder or ".", "." + glob.escape(base) + "-*.tmp*"))
    for path in stale:
        os.remove(path)
    if stale:
        logging.info("removed %d temporary files left by an interrupted run: %s", len(stale),
                     ", ".join(os.path.basename(p) for p in stale))
    return stale


def lr_scheduler(schedule, warmup=0):
    """The stage's lr policy: 'step' (Caffe's: x lr_factor every lr_step iterations) or
    'poly' (DeepLab's: lr (1 - iter / max_iter)^0.9)."""
    if schedule.policy == "poly":
        return mx.lr_scheduler.PolyScheduler(schedule.max_iter, base_lr=schedule.lr, pwr=0.9,
                                             final_lr=0, warmup_steps=warmup)
    return mx.lr_scheduler.FactorScheduler(schedule.lr_step, schedule.lr_factor,
                                           base_lr=schedule.lr, warmup_steps=warmup)


def fit(cfg, symbol, train_iter, ctx, prefix, schedule, batch_loss, start, mean_losses=False,
        cluster=None, log_every=10, events=None, on_epoch=None):
    """Train ``symbol`` on ``schedule`` (cores/stages.py: lr, step, iterations, epoch size)
    from ``start`` (checkpoint.initial_params), saving ``prefix``-NNNN.params after each epoch.
    ``batch_loss(outputs, batch)`` returns a dict of named loss values of one batch. Returns
    the loss history: a dict per iteration (iter, lr, the losses, and ``seconds``, the wall time
    since this run began, which bench/run_bench.py reads). Rank 0 draws ``prefix``-losses.png
    after every epoch, logs the losses, lr and images/s to ``events`` (cores/events.py), calls
    ``on_epoch(epoch, iteration, arg, aux)`` after each snapshot (the stage's pictures and
    scores) and ends with a summary.

    Gradient scale: per-sample losses (LogisticRegressionOutput) are divided by the batch
    size, as Caffe's normalised losses. ``mean_losses`` (SEC: each device's loss is already a
    mean over its part of the batch) divides by the number of devices instead, so the update
    is that of the batch mean (exactly so when the batch splits evenly). Under a synchronous
    distributed kvstore the gradients of all workers add up, and the scale divides by the
    number of workers too (cores/distributed.py); only rank 0 writes snapshots."""
    from cores.distributed import Cluster
    cluster = cluster or Cluster()
    mod = _module(cfg, symbol, train_iter, ctx, schedule, start, mean_losses, cluster)
    if cluster.is_root:
        remove_stale_temporaries(prefix)
    run = _Run(cfg, prefix, schedule, start, train_iter.batch_size, log_every,
               events if events is not None and cluster.is_root else None)
    for epoch in range(start.begin_epoch, math.ceil(schedule.max_iter / schedule.epoch_size)):
        run.epoch(mod, train_iter, batch_loss, epoch, cluster)
        # Module.get_params can copy a BatchNorm's moving statistics before the engine has
        # finished updating them (two runs of one seed saved different ones); wait for all
        mx.nd.waitall()
        if cluster.is_root:
            run.save(mod, epoch + 1, on_epoch)
        cluster.barrier()                  # every worker may read the snapshot from here on
    if cluster.kv is not None:
        # a Module still holding the distributed kvstore at interpreter exit makes ps-lite
        # abort the process; release it now
        del mod
        import gc
        gc.collect()
    if cluster.is_root:
        summary(prefix, run.history, run.loss_keys, time.time() - run.started, run.events)
    return run.history


def _module(cfg, symbol, train_iter, ctx, schedule, start, mean_losses, cluster):
    """The Module bound for training, its parameters from ``start`` (new layers by their
    initialisers, seeded), its SGD optimizer on the stage's lr policy and momentum state."""
    # optimizer state lives in the Module (asynchronous training must update on the servers)
    os.environ["MXNET_UPDATE_ON_KVSTORE"] = "0" if cluster.synchronous else "1"
    flush_denormals()                               # no denormal stalls
    data_names = [d.name for d in train_iter.provide_data]
    label_names = [d.name for d in train_iter.provide_label]
    mod = mx.mod.Module(symbol, data_names=data_names, label_names=label_names, context=ctx)
    mod.bind(data_shapes=train_iter.provide_data, label_shapes=train_iter.provide_label)
    mx.random.seed(cfg.SEED)
    np.random.seed(cfg.SEED)
    mod.init_params(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2),
                    arg_params=start.arg, aux_params=start.aux, allow_missing=True)
    workers = cluster.num_workers if cluster.kv is not None and cluster.synchronous else 1
    params = dict(learning_rate=schedule.lr, momentum=cfg.MOMENTUM, wd=cfg.WD,
                  lr_scheduler=lr_scheduler(schedule, cfg.WARMUP_ITER),
                  begin_num_update=start.begin_epoch * schedule.epoch_size,
                  rescale_grad=1.0 / workers / (len(ctx) if mean_losses else
                                                train_iter.batch_size))
    if cfg.CLIP_GRADIENT > 0:
        params["clip_gradient"] = cfg.CLIP_GRADIENT
    mod.init_optimizer(kvstore=cluster.kvstore_for(ctx), optimizer="sgd",
                       optimizer_params=params)
    if start.optimizer_state and mod._updater is not None:
        _restore_optimizer_state(mod, start.optimizer_state)
    return mod


class _Run:
    """The bookkeeping of one run of fit: the loss history (continued from the saved one on a
    resume), the log lines, the event log and the snapshots."""

    def __init__(self, cfg, prefix, schedule, start, batch_size, log_every, events):
        self.cfg, self.prefix, self.schedule = cfg, prefix, schedule
        self.batch_size, self.log_every, self.events = batch_size, log_every, events
        self.iteration = start.begin_epoch * schedule.epoch_size
        self.history = []
        path = stages.history_path(prefix)
        if start.begin_epoch and os.path.isfile(path):
            with open(path) as f:
                self.history = [h for h in json.load(f) if h["iter"] <= self.iteration]
        self.started = time.time()
        self.loss_keys = []

    def epoch(self, mod, train_iter, batch_loss, epoch, cluster):
        """The steps of epoch ``epoch``: a NaN check, an update and a history entry each."""
        cfg, schedule = self.cfg, self.schedule
        train_iter.reset()
        steps = min(schedule.epoch_size, schedule.max_iter - self.iteration)
        window, tic = [], time.time()
        total = math.ceil(schedule.max_iter / schedule.epoch_size)
        bar = tqdm(total=steps, desc="%s epoch %d/%d" % (os.path.basename(self.prefix),
                                                          epoch + 1, total), leave=False)
        for _ in range(steps):
            batch = train_iter.next()
            # dropout masks depend on the iteration, not on resuming
            mx.random.seed(cfg.SEED + self.iteration * cluster.num_workers + cluster.rank)
            mod.forward_backward(batch)
            losses = batch_loss(mod.get_outputs(merge_multi_context=False), batch)
            bad = {k: v for k, v in losses.items() if not np.isfinite(v)}
            if bad:
                raise TrainingError(
                    "non-finite loss %s at iteration %d (epoch %d); images of the batch: %s. "
                    "The last good snapshot is kept (%s)." % (
                        ", ".join("%s=%s" % kv for kv in bad.items()), self.iteration + 1,
                        epoch + 1, ", ".join(train_iter.last_ids),
                        checkpoint.snapshot_path(self.prefix, epoch) if epoch else "none yet"))
            mod.update()
            self.iteration += 1
            lr_now = mod._optimizer.learning_rate
            self.history.append(dict(iter=self.iteration, lr=lr_now,
                                     seconds=round(time.time() - self.started, 4), **losses))
            window.append(losses)
            self.loss_keys = list(losses)
            bar.update(1)
            if self.iteration % self.log_every == 0 or self.iteration == schedule.max_iter:
                self._log(window, time.time() - tic, lr_now)
                window, tic = [], time.time()
        bar.close()

    def _log(self, window, seconds, lr_now):
        speed = len(window) * self.batch_size / seconds
        means = {k: np.mean([w[k] for w in window]) for k in window[0]}
        logging.info("iter %d  %s  lr %.2e  %.2f img/s", self.iteration,
                     "  ".join("%s %.4f" % kv for kv in means.items()), lr_now, speed)
        if self.events:
            for key, value in means.items():
                self.events.scalar("loss/" + key, value, self.iteration)
            self.events.scalar("lr", lr_now, self.iteration)
            self.events.scalar("images_per_s", speed, self.iteration)

    def save(self, mod, epoch, on_epoch):
        """Snapshot ``epoch`` with its optimizer state, the history, the loss figure, then
        ``on_epoch``."""
        arg, aux = mod.get_params()
        checkpoint.save_snapshot(self.prefix, epoch, arg, aux, self.cfg, _optimizer_state(mod),
                                 self.iteration)
        atomic_write_text(stages.history_path(self.prefix), json.dumps(self.history))
        logging.info("saved %s", checkpoint.snapshot_path(self.prefix, epoch))
        figures.loss_curves(stages.losses_path(self.prefix), self.history, self.loss_keys,
                            self.schedule.epoch_size, self.cfg.PLOT_LOG_SCALE)
        if on_epoch is not None:
            on_epoch(epoch, self.iteration, arg, aux)


def summary(prefix, history, keys, seconds, events=None):
    """The run in a few lines: iterations, wall time, final losses, where things went."""
    last = history[-10:]
    rows = [("stage", os.path.basename(prefix)),
            ("iterations", "%d" % (history[-1]["iter"] if history else 0)),
            ("wall time", "%.0f s" % seconds)]
    rows += [("final " + k, "%.4f" % np.mean([h[k] for h in last])) for k in keys if last]
    rows += [("snapshots", prefix + "-NNNN.params"),
             ("loss figure", stages.losses_path(prefix))]
    if events:
        rows.append(("events", events.folder + "  (tensorboard --logdir " +
                     os.path.dirname(events.folder) + ")"))
    width = max(len(k) for k, _ in rows)
    logging.info("summary\n%s", "\n".join("  %-*s  %s" % (width, k, v) for k, v in rows))


def multilabel_loss(outputs, batch):
    """Mean binary cross-entropy of a LogisticRegressionOutput batch (its outputs are the
    sigmoid probabilities)."""
    probs = np.concatenate([o.asnumpy() for o in outputs[0]])
    label = batch.label[0].asnumpy()
    probs = np.clip(probs, 1e-7, 1 - 1e-7)
    loss = -np.mean(label * np.log(probs) + (1 - label) * np.log(1 - probs))
    return {"logistic_loss": float(loss)}


def named_losses(outputs, batch, names):
    """Scalar MakeLoss outputs, averaged over devices, by name."""
    return {name: float(np.mean([o.asnumpy()[0] for o in per_device]))
            for name, per_device in zip(names, outputs)}
