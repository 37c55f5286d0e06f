"""The methods (cores/methods/): one module each, found by the registry, from which the
command line, the config's keys and the quality benchmark's rows derive; SEC's ablations as
methods; a method added by one module outside the repository; the ASPP head methods may use."""
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from cores import checkpoint, methods, stages
from cores.config import DEFAULTS, ConfigError, load_config
from cores.symbols import networks
from tests.conftest import REPO

EVERY = ["sec", "seed", "seed_expand", "seed_constrain", "dsrg", "retrain", "supervised"]


def test_the_registry_holds_every_module_of_the_package():
    assert list(methods.all_methods()) == EVERY
    with pytest.raises(methods.MethodError, match="choose one of sec, seed"):
        methods.get("grow")


@pytest.mark.parametrize("name", EVERY)
def test_every_method_is_complete_at_full_size(name):
    """Its network shape-infers at 321 on the inputs it declares, its losses are named
    <loss>_loss, its schedule keys and its own keys are config keys (their defaults its
    own), and a resumed run checks keys that exist."""
    method = methods.get(name)
    cfg = load_config()
    symbol = method.symbol(cfg)
    shapes = method.input_shapes(cfg, 2, 41)
    args = set(symbol.list_arguments())
    assert {a for a in args if not a.endswith(("_weight", "_bias"))} <= set(shapes)
    assert symbol.infer_shape(**{k: v for k, v in shapes.items() if k in args})[1] == \
        [(1,)] * len(networks.loss_names(symbol))
    assert all(n.endswith("_loss") for n in networks.loss_names(symbol))
    for key in method.schedule_keys() + list(stages.Schedule(cfg, method).resume_keys):
        assert key in DEFAULTS, key
    for key, value in method.defaults.items():
        assert DEFAULTS[key] == value and cfg[key] == value
    assert method.bench_rows() and all(isinstance(r, methods.Row) for r in method.bench_rows())


@pytest.mark.parametrize("name, losses, inputs", [
    ("seed", ["seed"], {"data", "cues"}),
    ("seed_expand", ["seed", "expand"], {"data", "cues", "labels"}),
    ("seed_constrain", ["seed", "constrain"], {"data", "cues", "small_images"}),
    ("sec", ["seed", "expand", "constrain"], {"data", "cues", "labels", "small_images"}),
])
def test_each_ablation_holds_exactly_its_losses(name, losses, inputs):
    """The paper's loss combinations are methods of their own (their own snapshots)."""
    cfg = load_config()
    method = methods.get(name)
    sym = method.symbol(cfg)
    assert networks.loss_names(sym) == [n + "_loss" for n in losses]
    args = set(sym.list_arguments())
    assert {a for a in args if not a.endswith(("_weight", "_bias"))} == inputs
    assert set(method.input_shapes(cfg, 2, 41)) == inputs
    has_crf = any(n.startswith("crf") for n in sym.get_internals().list_outputs())
    assert has_crf == ("constrain" in losses)
    assert stages.prefix(cfg, method).endswith("/%s_vgg16" % name)


def test_the_methods_keys_are_checked():
    with pytest.raises(ConfigError, match="DSRG_CLIP"):
        load_config(None, ["DSRG_CLIP=[2.0, 20.0]"])
    with pytest.raises(ConfigError, match="LR_POLICY_RT='cosine'; choose one of poly, step"):
        load_config(None, ["LR_POLICY_RT=cosine"])
    with pytest.raises(ConfigError, match="SUPERVISED_LR_SCALE=0.0 must be positive"):
        load_config(None, ["SUPERVISED_LR_SCALE=0"])
    with pytest.raises(ConfigError, match="unknown config key 'SEC_LOSSES'"):
        load_config(None, ["SEC_LOSSES=seed"])        # the ablations are methods now


def test_the_command_line_lists_the_registry():
    import argparse
    from cores.runtime import add_method_args, method_of
    parser = argparse.ArgumentParser()
    add_method_args(parser, "train")
    assert method_of(parser.parse_args([])) is methods.get("sec")
    assert method_of(parser.parse_args(["--supervised"])) is methods.get("supervised")
    assert method_of(parser.parse_args(["--stage", "seed_expand"])).losses == ("seed", "expand")
    with pytest.raises(SystemExit):
        method_of(parser.parse_args(["--stage", "retrain", "--supervised"]))
    text = parser.format_help()
    for name in EVERY:
        assert name in text


TOY_METHOD = '''"""A method made in a test: SEC's seeding loss times TOY_WEIGHT, on its own schedule."""
from cores.methods import Method, Row, register


class Toy(Method):
    name = "toy"
    help = "a test's method: the seeding loss times TOY_WEIGHT"
    suffix = "_TOY"
    mirror = "MIRROR_TOY"
    defaults = {"BATCH_SIZE_TOY": 2, "LR_TOY": 1e-3, "LR_STEP_TOY": 100, "MAX_ITER_TOY": 4,
                "EPOCH_SIZE_TOY": 2, "MIRROR_TOY": False, "TOY_WEIGHT": 2.0}
    positive = ("TOY_WEIGHT",)
    rows = [Row("Toy"), Row("Toy x3", ("TOY_WEIGHT=3",))]

    def symbol(self, cfg):
        import mxnet as mx
        from cores.symbols import networks, sec_losses
        probs = sec_losses.softmax_with_floor(networks.sec_scores(cfg, mx.sym.Variable("data")),
                                              cfg.MIN_PROB)
        loss = sec_losses.seed_loss(probs, mx.sym.Variable("cues"))
        return mx.sym.Group([mx.sym.MakeLoss(cfg.TOY_WEIGHT * loss, name="toy_loss")])


register(Toy())
'''


@pytest.mark.slow
def test_a_method_is_one_module(toy_index, tmp_path):
    """A method written in a module outside the repository and named in SEC_METHODS (nothing
    else changed): train_SEC.py and eval.py take --stage toy, its keys are config keys that
    --set and the checks know, it trains and evaluates, and the benchmark has its rows."""
    cfg, _ = toy_index
    (tmp_path / "toymethod.py").write_text(TOY_METHOD)
    env = dict(os.environ, SEC_METHODS="toymethod",
               PYTHONPATH=os.pathsep.join([str(tmp_path), REPO]))
    work = tmp_path / "work"
    sets = ["DATASET_PATH=" + cfg.DATASET_PATH, "SNAPSHOT_PATH=%s" % (work / "snapshots"),
            "OUTPUT_PATH=%s" % (work / "outputs"), "CACHE_PATH=%s" % (work / "cache"),
            "LOG_PATH=%s" % (work / "log"), "MODEL_PATH=%s" % (work / "models"),
            "RANDOM_INIT=true", "INPUT_SIZE=41", "DATA_WORKERS=1", "CRF_WORKERS=1",
            "TOY_WEIGHT=0.5", "TENSORBOARD=false"]
    from tests.conftest import gt_cue_file
    cue_file = gt_cue_file(type(cfg)(cfg, CACHE_PATH=str(work / "cache")), toy_index[1], 6)

    def run(*args):
        done = subprocess.run([sys.executable] + list(args), cwd=REPO, env=env, text=True,
                              capture_output=True)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        return done.stdout + done.stderr
    assert "toy, a test's method" in run("train_SEC.py", "--help").replace("\n", " ")
    out = run("train_SEC.py", "--cfg", "demo/toy.yaml", "--stage", "toy", "--cues", cue_file,
              "--set", *sets)
    assert "toy_loss" in out
    snapshot = os.path.join(str(work / "snapshots"), "toy_vgg16-0002.params")
    assert os.path.isfile(snapshot)
    assert checkpoint.snapshot_meta(snapshot[:-len("-0002.params")], 2)[1]["TOY_WEIGHT"] == 0.5
    run("eval.py", "--cfg", "demo/toy.yaml", "--stage", "toy", "--set", *sets)
    assert os.path.isfile(os.path.join(str(work / "outputs"), "toy_vgg16-0002", "metrics.json"))
    bad = subprocess.run([sys.executable, "train_SEC.py", "--stage", "toy", "--set",
                          "TOY_WEIGHT=0"], cwd=REPO, env=env, text=True, capture_output=True)
    assert bad.returncode != 0 and "TOY_WEIGHT=0.0 must be positive" in bad.stdout + bad.stderr
    rows = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'bench'); "
                           "import quality; print([r.name for r in quality.ROWS])"], cwd=REPO,
                          env=env, text=True, capture_output=True)
    assert "'Toy', 'Toy x3'" in rows.stdout, rows.stderr


@pytest.mark.parametrize("net", ["vgg16", "resnet50"])
def test_aspp_head_at_full_size(net):
    cfg = load_config(None, ["HEAD=aspp", "BASE_NET=" + net])
    scores = networks.sec_scores(cfg, mx.sym.Variable("data"), dropout=False)
    args, out, _ = scores.infer_shape(data=(1, 3, 321, 321))
    assert out == [(1, 21, 41, 41)]
    shapes = dict(zip(scores.list_arguments(), args))
    for k, dilation in enumerate((6, 12, 18, 24), start=1):
        assert "fc8_%d_weight" % k in networks.new_param_names(scores)
        conv = scores.get_internals()["%s_%d_output" % ("fc6" if net == "vgg16" else "fc8", k)]
        assert conv.attr("dilate") == "(%d, %d)" % (dilation, dilation)
    if net == "vgg16":
        assert shapes["fc6_1_weight"] == (1024, 512, 3, 3)
        assert shapes["fc7_4_weight"] == (1024, 1024, 1, 1)


def test_aspp_branches_start_from_the_pretrained_fc6_and_fc7(tmp_path):
    cfg = load_config(None, ["HEAD=aspp", "WIDTH_MULT=0.125", "INPUT_SIZE=81",
                             "MODEL_PATH=" + str(tmp_path)])
    plain = networks.sec_scores(type(cfg)(cfg, HEAD="largefov"), mx.sym.Variable("data"))
    shapes = checkpoint.expected_shapes(plain, {"data": (1, 3, 81, 81)})[0]
    rng = np.random.RandomState(0)
    weights = {k: mx.nd.array(rng.randn(*s)) for k, s in shapes.items() if not k.startswith("fc8")}
    checkpoint.save_params(stages.weights_path(cfg), weights, {})
    aspp = networks.sec_scores(cfg, mx.sym.Variable("data"))
    arg, _ = checkpoint.pretrained_params(cfg, aspp, {"data": (1, 3, 81, 81)})
    for k in range(1, 5):
        for layer in ("fc6", "fc7"):
            np.testing.assert_array_equal(arg["%s_%d_weight" % (layer, k)].asnumpy(),
                                          weights[layer + "_weight"].asnumpy())
        assert "fc8_%d_weight" % k not in arg              # new: its own initialiser
