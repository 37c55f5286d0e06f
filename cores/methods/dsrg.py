"""DSRG (Huang et al., CVPR 2018, as its released code does it): deep seeded region growing.
Every iteration the dense CRF refines the floored probabilities and the seeds grow on its
marginals from the original cues; the balanced seeding loss on the grown seeds and the
constrain loss with Q/p clipped to DSRG_CLIP train the network; no expansion loss. Its solver
(batch 20, lr 5e-4 x0.33 every 1,000 of 8,000 iterations, mirroring) is its own.

This module holds all of it: the config keys, the growing rule, the worker task that refines a
batch and grows its seeds in the CRF processes, the ``dsrg_grow`` operator, the two losses and
the training network. MXNet is imported only when the network is built: the CRF workers import
this module for ``refine_and_grow``."""
import numpy as np
import scipy.ndimage as ndi

from cores import stages
from cores.methods import Method, Row, register

EIGHT_CONNECTED = np.ones((3, 3), bool)


def grow_seeds(cues, probs, labels, fg_threshold=0.85, bg_threshold=0.99):
    """The seeds of one image grown on its refined probabilities: (C, H, W) 0/1.

    cues (C, H, W) 0/1, the original seeds (every call starts from them: growing is not
    cumulative); probs (C, H, W), the CRF's marginals; labels (C,) 0/1 with the background
    (class 0) set. A pixel is labelled c when c has the largest probability among the image's
    labels and that probability exceeds ``fg_threshold`` (and, for the background, also
    ``bg_threshold``); seeds keep their class unless such a label replaces it. A labelled
    pixel of c joins the seeds of c when its 8-connected component of c-labelled pixels holds
    a seed of c, unless it is the seed of exactly one other class."""
    cues = np.asarray(cues) > 0
    present = np.flatnonzero(np.asarray(labels) > 0.5)
    selected = np.asarray(probs)[present]
    best = present[selected.argmax(axis=0)]
    value = selected.max(axis=0)
    label_map = np.full(cues.shape[1:], -1, np.int64)
    for c in range(len(cues)):                     # where several seeds meet, the last wins
        label_map[cues[c]] = c
    confident = (value > fg_threshold) & ((best != 0) | (value > bg_threshold))
    label_map[confident] = best[confident]
    grown = cues.copy()
    seeded_once = cues.sum(axis=0) == 1
    for c in present:
        region = label_map == c
        components, _ = ndi.label(region, structure=EIGHT_CONNECTED)
        touching = np.unique(components[region & cues[c]])
        keep = np.isin(components, touching[touching > 0]) & ~(seeded_once & ~cues[c])
        grown[c] |= keep
    return grown.astype(np.float32)


def refine_and_grow(args):
    """Worker task: (floored log Q, grown seeds) of a chunk of a batch: images (N, H, W, 3)
    uint8, unaries, labels (N, C), cues (N, C, H, W), the CRF's parameters, its floor and the
    two thresholds. The seeds grow on Q floored and renormalised, as the constrain loss sees
    it."""
    from cores import crf
    images, unaries, labels, cues, params, min_prob, fg, bg = args
    log_q = crf.floored_log_q(crf.batch_crf(images, unaries, params), min_prob)
    q = np.exp(log_q)
    grown = np.stack([grow_seeds(c, p, lab, fg, bg) for c, p, lab in zip(cues, q, labels)])
    return log_q.astype(np.float32), grown


def batch_refine_and_grow(images, unaries, labels, cues, params, min_prob, fg, bg, pool=None):
    """``refine_and_grow`` over a batch, cut into contiguous chunks for a process pool of P
    workers (P + 1 chunks, the caller computing the first) as ``crf.batch_crf``."""
    if pool is None or len(unaries) < 2:
        return refine_and_grow((images, unaries, labels, cues, params, min_prob, fg, bg))
    parts = min(pool._max_workers + 1, len(unaries))
    bounds = np.linspace(0, len(unaries), parts + 1).astype(int)
    chunks = [(images[a:b], unaries[a:b], labels[a:b], cues[a:b], params, min_prob, fg, bg)
              for a, b in zip(bounds[:-1], bounds[1:])]
    futures = [pool.submit(refine_and_grow, chunk) for chunk in chunks[1:]]
    results = [refine_and_grow(chunks[0])] + [f.result() for f in futures]
    return (np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results]))


# ---------------------------------------------------------------- the operator
def register_operator():
    """Register the ``dsrg_grow`` CustomOp with MXNet (once): the dense CRF of ``sec_crf`` on
    (N, C, H, W) ``unary`` (DSRG: the probabilities) and ``small_images``, and the seeds
    ``cues`` (N, C, H, W) grown on its marginals for the image ``labels`` (N, C), in the CRF
    worker processes. Outputs: log Q floored at ``min_prob``, the grown seeds. With
    ``pass_gradient`` the unary receives (1 - Q) x the gradient of log Q (DSRG's CRF layer);
    otherwise nothing does."""
    import ast
    import mxnet as mx
    from cores.symbols.crf_op import _CRFProp
    from cores.workers import shared_pool, worker_count
    if _OPERATOR:
        return

    class GrowOp(mx.operator.CustomOp):
        def __init__(self, params, min_prob, workers, thresholds, pass_gradient):
            super().__init__()
            self.params, self.min_prob, self.workers = params, min_prob, workers
            self.thresholds, self.pass_gradient = thresholds, pass_gradient

        def forward(self, is_train, req, in_data, out_data, aux):
            unary = in_data[0].asnumpy().astype(np.float32)
            images = np.clip(np.round(in_data[1].asnumpy()), 0, 255).astype(np.uint8)
            pool = shared_pool(min(self.workers, len(unary)) - 1)
            log_q, grown = batch_refine_and_grow(images, unary, in_data[2].asnumpy(),
                                                 in_data[3].asnumpy(), self.params,
                                                 self.min_prob, *self.thresholds, pool=pool)
            self.assign(out_data[0], req[0], mx.nd.array(log_q))
            self.assign(out_data[1], req[1], mx.nd.array(grown))

        def backward(self, req, out_grad, in_data, out_data, in_grad, aux):
            for i, grad in enumerate(in_grad):
                self.assign(grad, req[i], 0)
            if self.pass_gradient:
                # DSRG's CRF layer: d/d unary = (1 - Q) x the gradient reaching log Q
                self.assign(in_grad[0], req[0], (1 - mx.nd.exp(out_data[0])) * out_grad[0])

    @mx.operator.register("dsrg_grow")
    class GrowProp(mx.operator.CustomOpProp):
        def __init__(self, scale_factor, pos_xy_std, pos_w, bi_xy_std, bi_rgb_std, bi_w,
                     maxiter, min_prob, workers, fg_threshold, bg_threshold, pass_gradient):
            self.pass_gradient = ast.literal_eval(str(pass_gradient)) in (True, 1)
            super().__init__(need_top_grad=self.pass_gradient)
            self.params = _CRFProp.parse(scale_factor, pos_xy_std, pos_w, bi_xy_std,
                                         bi_rgb_std, bi_w, maxiter)
            self.min_prob = float(min_prob)
            self.workers = worker_count(int(ast.literal_eval(workers)))
            self.thresholds = (float(fg_threshold), float(bg_threshold))

        def list_arguments(self):
            return ["unary", "small_images", "labels", "cues"]

        def list_outputs(self):
            return ["log_q", "grown"]

        def infer_shape(self, in_shape):
            unary, images, labels, cues = in_shape
            _CRFProp.check_image_shape(unary, images)
            if tuple(cues) != tuple(unary) or tuple(labels) != tuple(unary[:2]):
                raise ValueError("dsrg_grow: cues %s and labels %s must be (N, C, H, W) = %s "
                                 "and (N, C)" % (tuple(cues), tuple(labels), tuple(unary)))
            return [unary, images, labels, cues], [unary, unary], []

        def declare_backward_dependency(self, out_grad, in_data, out_data):
            return [out_grad[0], out_data[0]] if self.pass_gradient else []

        def create_operator(self, ctx, shapes, dtypes):
            return GrowOp(self.params, self.min_prob, self.workers, self.thresholds,
                          self.pass_gradient)

    _OPERATOR.append(GrowProp)


_OPERATOR = []


# ---------------------------------------------------------------- the losses
def balanced_seed_loss(probs, cues, floor=1e-4):
    """DSRG's seeding loss: the seeding loss of the background seeds and that of the
    foreground seeds, each normalised by its own count per image (floored at ``floor``, so an
    image without seeds of one kind adds 0 for it), averaged over the batch and summed."""
    import mxnet as mx
    log_p = mx.sym.log(probs)
    bg_cues = mx.sym.slice_axis(cues, axis=1, begin=0, end=1)
    fg_cues = mx.sym.slice_axis(cues, axis=1, begin=1, end=None)
    bg = mx.sym.sum(bg_cues * mx.sym.slice_axis(log_p, axis=1, begin=0, end=1), axis=(1, 2, 3))
    fg = mx.sym.sum(fg_cues * mx.sym.slice_axis(log_p, axis=1, begin=1, end=None),
                    axis=(1, 2, 3))
    bg = bg / mx.sym.maximum(mx.sym.sum(bg_cues, axis=(1, 2, 3)), floor)
    fg = fg / mx.sym.maximum(mx.sym.sum(fg_cues, axis=(1, 2, 3)), floor)
    return -mx.sym.mean(bg) - mx.sym.mean(fg)


def clipped_constrain_loss(probs, crf_log_probs, low=0.05, high=20.0, through_crf=False):
    """DSRG's constrain loss: (1/(N H W)) sum_{n,u} sum_c Q log(clip(Q / p, low, high)); no
    gradient where the ratio is clipped. ``through_crf``: the gradient also reaches
    ``crf_log_probs`` (DSRG's CRF layer passes it on); otherwise Q is a constant as in SEC."""
    import mxnet as mx
    log_q = crf_log_probs if through_crf else mx.sym.BlockGrad(crf_log_probs)
    q = mx.sym.exp(log_q)
    ratio = mx.sym.clip(q / probs, low, high)
    return mx.sym.mean(mx.sym.sum(q * mx.sym.log(ratio), axis=1))


# ---------------------------------------------------------------- the method
class DSRG(Method):
    name = "dsrg"
    help = "DSRG: seeds grown on the CRF's marginals every iteration (Huang et al. 2018)"
    order = 20
    suffix = "_DSRG"
    mirror = "MIRROR_DSRG"
    factor = "LR_FACTOR_DSRG"
    defaults = {
        "BATCH_SIZE_DSRG": 20,
        "LR_DSRG": 5e-4,
        "LR_STEP_DSRG": 1000,
        "LR_FACTOR_DSRG": 0.33,
        "MAX_ITER_DSRG": 8000,
        "EPOCH_SIZE_DSRG": 1000,
        "MIRROR_DSRG": True,
        "DSRG_FG_THRESHOLD": 0.85,           # a pixel joins a foreground class above it
        "DSRG_BG_THRESHOLD": 0.99,           # ... the background above this
        "DSRG_CLIP": [0.05, 20.0],           # constrain loss: Q/p clipped to this range
        "DSRG_CRF_GRADIENT": True,           # its CRF layer passes (1 - Q) x the gradient
    }
    unit_interval = ("LR_FACTOR_DSRG", "DSRG_FG_THRESHOLD", "DSRG_BG_THRESHOLD")
    resume_keys = (("MIN_PROB", "HEAD") + stages.CRF_KEYS
                   + ("DSRG_FG_THRESHOLD", "DSRG_BG_THRESHOLD", "DSRG_CLIP", "DSRG_CRF_GRADIENT"))
    inputs = ("small_images", "labels")
    # as released (its DeepLab-ASPP head), and on SEC's lr schedule and batch: its method
    # told from its schedule, whose lr falls x0.33 every 1/8 of the run
    rows = [Row("DSRG", ("HEAD=aspp",)),
            Row("DSRG-SEC-lr", ("HEAD=aspp", "LR_DSRG={LR}", "LR_STEP_DSRG={LR_STEP}",
                                "LR_FACTOR_DSRG={LR_FACTOR}", "BATCH_SIZE_DSRG={BATCH_SIZE}"))]

    def check(self, cfg):
        from cores.errors import ConfigError
        if not 0 < cfg.DSRG_CLIP[0] < 1 < cfg.DSRG_CLIP[1]:
            raise ConfigError("DSRG_CLIP=%r: expected [low, high] with 0 < low < 1 < high"
                              % (cfg.DSRG_CLIP,))

    def symbol(self, cfg):
        """The CRF on the floored probabilities and the seeds grown on its marginals; the
        balanced seeding loss on the grown seeds and the clipped constrain loss. Grouped as
        seed_loss, constrain_loss."""
        import mxnet as mx
        from cores import crf
        from cores.symbols import networks, sec_losses
        register_operator()
        scores = networks.sec_scores(cfg, mx.sym.Variable("data"))
        probs = sec_losses.softmax_with_floor(scores, cfg.MIN_PROB)
        grown = mx.sym.Custom(probs, mx.sym.Variable("small_images"), mx.sym.Variable("labels"),
                              mx.sym.Variable("cues"), op_type="dsrg_grow", name="grow",
                              min_prob=cfg.MIN_PROB, workers=cfg.CRF_WORKERS,
                              fg_threshold=cfg.DSRG_FG_THRESHOLD,
                              bg_threshold=cfg.DSRG_BG_THRESHOLD,
                              pass_gradient=bool(cfg.DSRG_CRF_GRADIENT),
                              **crf.train_params(cfg))
        low, high = cfg.DSRG_CLIP
        return mx.sym.Group([
            mx.sym.MakeLoss(balanced_seed_loss(probs, mx.sym.BlockGrad(grown[1]),
                                               cfg.MIN_PROB), name="seed_loss"),
            mx.sym.MakeLoss(clipped_constrain_loss(probs, grown[0], low, high,
                                                   bool(cfg.DSRG_CRF_GRADIENT)),
                            name="constrain_loss")])


register(DSRG())
