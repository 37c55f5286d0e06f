"""The fully supervised bound: the SEC network and schedule trained on the ground-truth masks
with softmax cross-entropy on the score grid (the seeding loss with every labelled pixel as a
cue, void left out): the upper bound SEC is measured against. Its schedule is SEC's, the lr
scaled by SUPERVISED_LR_SCALE and the iterations and step by SUPERVISED_ITER_SCALE (a
schedule that fits the data: docs/method.md, section 7)."""
from cores.methods import Method, Row, register
from cores.methods.base import mask_targets


def cross_entropy_symbol(cfg):
    """The bound's network: ``data`` and ``cues`` (N, C, H, W) one-hot -> ce_loss."""
    import mxnet as mx
    from cores.symbols import networks, sec_losses
    scores = networks.sec_scores(cfg, mx.sym.Variable("data"))
    probs = sec_losses.softmax_with_floor(scores, cfg.MIN_PROB)
    return mx.sym.Group([mx.sym.MakeLoss(sec_losses.seed_loss(probs, mx.sym.Variable("cues")),
                                         name="ce_loss")])


class Supervised(Method):
    name = "supervised"
    help = "the fully supervised bound (eval.py and train_SEC.py --supervised)"
    order = 90
    defaults = {
        "SUPERVISED_ITER_SCALE": 1.0,        # k x SEC's iterations and step
        "SUPERVISED_LR_SCALE": 1.0,          # k x SEC's lr
    }
    positive = ("SUPERVISED_ITER_SCALE", "SUPERVISED_LR_SCALE")
    scale = "SUPERVISED_ITER_SCALE"
    lr_scale = "SUPERVISED_LR_SCALE"
    resume_keys = ("SUPERVISED_ITER_SCALE", "SUPERVISED_LR_SCALE", "HEAD")
    # and with twice its iterations: has its schedule converged on the data?
    rows = [Row("bound"), Row("bound 2x", ("SUPERVISED_ITER_SCALE=2",))]
    flag = "--supervised"

    def symbol(self, cfg):
        return cross_entropy_symbol(cfg)

    def targets(self, cfg, entries, grid, cue_file=None):
        return mask_targets(entries, grid), grid

    def task(self, cfg):
        from cores.data import transforms
        return transforms.load_supervised, ("data", "cues")


register(Supervised())
