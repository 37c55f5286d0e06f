"""SEC (Kolesnikov & Lampert, ECCV 2016): the seeding, expansion and constrain-to-boundary
losses (method §4) on the merged localization cues, with the authors' solver (method §6). Its
schedule keys (BATCH_SIZE, LR, ...) are also the base of the bound's and the ablations'."""
from cores import stages
from cores.methods import Method, Row, register

LOSSES = ("seed", "expand", "constrain")


class SEC(Method):
    name = "sec"
    help = "SEC: seed, expand and constrain (the default)"
    order = 0
    losses = LOSSES
    defaults = {
        "BATCH_SIZE": 15,
        "LR": 1e-3,
        "LR_STEP": 2000,
        "MAX_ITER": 8000,
        "EPOCH_SIZE": 1000,                 # batches per epoch = snapshot interval
        "MIRROR": False,                    # the original does not mirror (method §6)
        "Q_FG": 0.996,                      # GWRP's decay for the present classes (§4)
        "Q_BG": 0.999,                      # ... and for the background
    }
    unit_interval = ("Q_FG", "Q_BG")
    resume_keys = ("Q_FG", "Q_BG", "MIN_PROB", "HEAD") + stages.CRF_KEYS
    rows = [Row("SEC")]
    flag = ""                                   # the default of train_SEC.py and eval.py

    @property
    def inputs(self):
        return (("small_images",) if "constrain" in self.losses else ()) + (
            ("labels",) if "expand" in self.losses else ())

    def symbol(self, cfg):
        """The losses of ``losses`` (all three; one or none besides the seeding loss for the
        paper's ablations), in the order seed_loss, expand_loss, constrain_loss."""
        import mxnet as mx
        from cores import crf
        from cores.symbols import networks, sec_losses
        from cores.symbols import crf_op  # noqa: F401  (registers the ``sec_crf`` operator)
        scores = networks.sec_scores(cfg, mx.sym.Variable("data"))
        probs = sec_losses.softmax_with_floor(scores, cfg.MIN_PROB)
        losses = [mx.sym.MakeLoss(sec_losses.seed_loss(probs, mx.sym.Variable("cues")),
                                  name="seed_loss")]
        if "expand" in self.losses:
            losses.append(mx.sym.MakeLoss(
                sec_losses.expand_loss(probs, mx.sym.Variable("labels"), cfg.Q_FG, cfg.Q_BG),
                name="expand_loss"))
        if "constrain" in self.losses:
            # the CRF's unary is the scores (method §5; the backbone may say otherwise)
            unary = networks.backbone(cfg).crf_unary(cfg, scores, probs)
            crf_log_probs = mx.sym.Custom(unary, mx.sym.Variable("small_images"),
                                          op_type="sec_crf", name="crf", min_prob=cfg.MIN_PROB,
                                          workers=cfg.CRF_WORKERS, **crf.train_params(cfg))
            losses.append(mx.sym.MakeLoss(sec_losses.constrain_loss(probs, crf_log_probs),
                                          name="constrain_loss"))
        return mx.sym.Group(losses)


register(SEC())
