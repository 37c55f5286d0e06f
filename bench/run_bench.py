"""Speed benchmark (not a test): images/s per stage and backbone, median and spread over steps
after warm-up, and peak resident memory, written as JSON and Markdown.

Each (stage, backbone) runs in its own process so that its peak memory is its own. Every
stage times the function its script runs, on toy scenes resized to 500x375 JPEGs with random
weights: training stages the fit loop of cores/train.py with the stage's own iterator (decoding
in worker processes; per-iteration wall times from the loss history); cue stages the extraction
functions of cores/localization.py; eval stages eval.py's pipeline (cores/evaluation.py:
decoding, forward, upsampling, CRF, masks), in rounds alternating with the bare inference
forward on the same input in the same process, reported as a ratio to it (this VM's speed
drifts by 10-20 % between minutes, more than the overhead to be seen), and as a ratio to the
network passes inside the round itself (the pipeline's own overhead, free of that drift).
Floors to read the rest against: the bare SEC network's forward + backward (``net_fwd_bwd``)
and its inference forward at batch 1 (``net_fwd``); and the training CRF on 15 images at
41x41, serial and with 2 workers.

    python bench/run_bench.py                       # VGG16 and ResNet50, 321, batch 2
    python bench/run_bench.py --backbones resnet50 --stages sec_train --steps 30
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

STAGES = ["saliency_train", "bg_cues", "cam_train", "fg_cues", "sec_train", "net_fwd_bwd",
          "net_fwd", "crf_op", "eval", "eval_crf", "eval_flip", "eval_crf_flip"]
INT8_STAGES = ["fg_cues_int8", "net_fwd_int8", "eval_int8", "eval_crf_int8", "eval_flip_int8",
               "eval_crf_flip_int8"]


def _peak_rss_mb():
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + children) / 1024.0


def _module(symbol, shapes, label_names, ctx, for_training=True):
    import mxnet as mx
    data_names = [n for n in shapes if n not in label_names]
    mod = mx.mod.Module(symbol, data_names=data_names, label_names=label_names, context=ctx)
    mod.bind(data_shapes=[(n, shapes[n]) for n in data_names],
             label_shapes=[(n, shapes[n]) for n in label_names] or None,
             for_training=for_training)
    mx.random.seed(0)
    mod.init_params(mx.init.Xavier(rnd_type="gaussian", factor_type="in", magnitude=2))
    if for_training:
        mod.init_optimizer(optimizer="sgd", optimizer_params={"learning_rate": 1e-3,
                                                              "momentum": 0.9, "wd": 5e-4})
    return mod


def _batch(shapes, label_names, rng):
    import mxnet as mx
    arrays = {}
    for name, shape in shapes.items():
        if name == "data":
            arrays[name] = rng.randn(*shape) * 60
        elif name == "small_images":
            arrays[name] = rng.randint(0, 256, shape)
        elif name == "cues":
            arrays[name] = (rng.rand(*shape) < 0.05)
        else:
            arrays[name] = (rng.rand(*shape) < 0.3)
            if name == "labels":
                arrays[name][:, 0] = 1
    return mx.io.DataBatch(
        data=[mx.nd.array(arrays[n]) for n in shapes if n not in label_names],
        label=[mx.nd.array(arrays[n]) for n in label_names])


def _time_steps(step, steps, warmup):
    for _ in range(warmup):
        step()
    times = []
    for _ in range(steps):
        tic = time.perf_counter()
        step()
        times.append(time.perf_counter() - tic)
    return times


def _toy_entries(work, count):
    """Toy scenes resized to VOC's typical 500x375, as JPEGs with their image labels: what
    create_dataset.py indexes."""
    import numpy as np
    from PIL import Image
    from datagen import toy, variants
    spec = variants.variant("demo")
    looks = toy.appearances(spec)
    rng = np.random.RandomState(0)
    entries = []
    for i in range(count):
        path = os.path.join(work, "%03d.jpg" % i)
        scene, mask = toy.render(rng, spec, looks)
        Image.fromarray(scene).resize((500, 375), Image.BILINEAR).save(path)
        entries.append({"id": "%03d" % i, "image": path, "mask": None,
                        "labels": [int(v) for v in np.unique(mask) if v > 0]})
    return entries


TRAINING = {"saliency_train": "saliency", "cam_train": "cam", "sec_train": "sec"}


def run_training(stage, backbone, size, batch, steps, warmup):
    """Seconds per iteration of the stage's own fit loop (cores/train.py) with its own
    iterator on toy JPEGs, random weights; SEC on random cues."""
    import mxnet as mx
    import numpy as np
    from cores import checkpoint, cues, methods, stages
    from cores.classifier import train_symbol
    from cores.config import load_config
    from cores.data.iterators import multilabel_iter, segmentation_iter
    from cores.symbols import networks
    from cores.train import fit, multilabel_loss, named_losses
    name = TRAINING[stage]
    kind = methods.get(name) if name == "sec" else {s.name: s for s in stages.CLASSIFIERS}[name]
    work = tempfile.mkdtemp(prefix="secbench")
    iters = warmup + steps
    cfg = load_config(overrides=[
        "BASE_NET=" + backbone, "INPUT_SIZE=%d" % size, "SNAPSHOT_PATH=" + work,
        "MODEL_PATH=" + work, "RANDOM_INIT=true", "%s=%d" % (kind.key("batch"), batch),
        "%s=%d" % (kind.key("max_iter"), iters), "%s=%d" % (kind.key("epoch"), iters)])
    entries = _toy_entries(work, 2 * batch)
    schedule = stages.Schedule(cfg, kind)
    if name == "sec":
        grid = stages.score_size(cfg)
        rng = np.random.RandomState(0)
        cue_set = {e["id"]: cues.masks_to_sparse({c: rng.rand(grid, grid) < 0.05
                                                  for c in [0] + e["labels"]})
                   for e in entries}
        symbol = kind.symbol(cfg)
        shapes = kind.input_shapes(cfg, batch, grid)
        it = segmentation_iter(cfg, entries, cue_set, grid, schedule, kind.task(cfg), shapes)
        names = networks.loss_names(symbol)
        loss, mean_losses = (lambda o, b: named_losses(o, b, names)), True
    else:
        symbol = train_symbol(cfg, kind)
        shapes = {"data": stages.image_shape(cfg, batch), "label": (batch, cfg.CLASS_NUM - 1)}
        it = multilabel_iter(cfg, entries, batch, iters)
        loss, mean_losses = multilabel_loss, False
    start = checkpoint.initial_params(cfg, kind, symbol, shapes)
    try:
        history = fit(cfg, symbol, it, [mx.cpu()], stages.prefix(cfg, kind), schedule, loss,
                      start, mean_losses=mean_losses, log_every=10 ** 9)
    finally:
        it.close()
    seconds = [0.0] + [h["seconds"] for h in history]
    return list(np.diff(seconds)[warmup:]), batch


def run_cues(stage, backbone, size, batch, steps, warmup):
    """Seconds per batch of the cue stage's own extraction function (cores/localization.py:
    decoding, forward [and backward], the cue rule) on toy JPEGs, random weights."""
    import mxnet as mx
    from cores import localization, stages
    from cores.classifier import train_symbol
    from cores.config import load_config
    kind = "bg" if stage == "bg_cues" else "fg"
    work = tempfile.mkdtemp(prefix="secbench")
    cfg = load_config(overrides=["BASE_NET=" + backbone, "INPUT_SIZE=%d" % size])
    symbol = train_symbol(cfg, stages.CUE_STAGES[kind])
    mod = _module(symbol, {"data": stages.image_shape(cfg, batch),
                           "label": (batch, cfg.CLASS_NUM - 1)}, ["label"], [mx.cpu()])
    arg, aux = mod.get_params()
    extract = localization.EXTRACT[kind]
    entries = _toy_entries(work, (warmup + steps) * batch)
    quantized = {}
    if stage.endswith("int8"):
        from cores.symbols import networks
        quantized["symbol"], arg, aux = _int8(cfg, networks.cam_symbol(cfg), arg, aux,
                                              entries[:4], False)
    extract(cfg, [mx.cpu()], arg, aux, entries[:warmup * batch], batch, **quantized)
    tic = time.perf_counter()
    extract(cfg, [mx.cpu()], arg, aux, entries[warmup * batch:], batch, **quantized)
    return [(time.perf_counter() - tic) / steps], batch


def _int8(cfg, symbol, arg, aux, entries, corners):
    """``symbol`` quantized as --int8 does it, calibrated on ``entries`` (entropy)."""
    from cores.quantize import calibration_iter, quantize_network
    return quantize_network(symbol, arg, aux, calibration_iter(cfg, entries, corners),
                            len(entries))


def run_network(stage, backbone, size, batch, steps, warmup):
    """The floors: the bare SEC network's forward + backward (``net_fwd_bwd``, batch ``batch``)
    and its inference forward (``net_fwd``, batch 1, as eval runs it), on a fixed input."""
    import mxnet as mx
    import numpy as np
    from cores.config import load_config
    from cores.denormals import flush_denormals
    from cores.symbols import networks
    if not os.environ.get("SEC_BENCH_NO_FTZ"):
        flush_denormals()
    cfg = load_config(overrides=["BASE_NET=" + backbone, "INPUT_SIZE=%d" % size])
    rng = np.random.RandomState(0)
    forward = stage.startswith("net_fwd_") or stage == "net_fwd"
    if forward:
        batch = 1
        symbol = networks.sec_infer_symbol(cfg)
    else:
        symbol = mx.sym.MakeLoss(mx.sym.mean(networks.sec_scores(cfg, mx.sym.Variable("data"))))
    shapes = {"data": (batch, 3, size, size)}
    mod = _module(symbol, shapes, [], [mx.cpu()], for_training=not forward)
    data = _batch(shapes, [], rng)
    if stage == "net_fwd_int8":              # calibrated on toy scenes, as eval --int8 is
        arg, aux = mod.get_params()
        qsym, qarg, qaux = _int8(cfg, symbol, arg, aux,
                                 _toy_entries(tempfile.mkdtemp(prefix="secbench"), 4), True)
        mod = mx.mod.Module(qsym, data_names=["data"], label_names=None, context=mx.cpu())
        mod.bind(data_shapes=[("data", shapes["data"])], for_training=False)
        mod.set_params(qarg, qaux)

    def step():
        if forward:
            mod.forward(data, is_train=False)
        else:
            mod.forward_backward(data)
            mod.update()
        for o in mod.get_outputs():
            o.wait_to_read()
    return _time_steps(step, steps, warmup), batch


def run_stage(stage, backbone, size, batch, steps, warmup):
    """Seconds per step for ``steps`` steps (and images per step)."""
    if stage in TRAINING:
        return run_training(stage, backbone, size, batch, steps, warmup)
    if stage in ("bg_cues", "fg_cues", "fg_cues_int8"):
        return run_cues(stage, backbone, size, batch, steps, warmup)
    return run_network(stage, backbone, size, batch, steps, warmup)


def run_crf(steps, warmup, workers):
    """The training CRF on 15 images at 41x41."""
    import numpy as np
    from cores import crf
    from cores.workers import shared_pool
    rng = np.random.RandomState(0)
    images = rng.randint(0, 256, (15, 41, 41, 3)).astype(np.uint8)
    scores = rng.randn(15, 21, 41, 41).astype(np.float32) * 3
    pool = shared_pool(workers - 1)          # the caller computes one share itself
    from cores.config import load_config
    params = crf.train_params(load_config())
    return _time_steps(lambda: crf.batch_crf(images, scores, params, pool), steps,
                       warmup), 15


def run_eval(stage, backbone, size, images, warmup, rounds):
    """Seconds per image of eval's whole pipeline on synthetic JPEGs, ``rounds`` times, and of
    the bare forward pass(es) before each round; each round's time over that of the network
    passes inside it, and their mean: (eval times, floor times, ratios, pass times)."""
    import mxnet as mx
    import numpy as np
    from PIL import Image
    from cores import checkpoint, methods, stages
    from cores.config import load_config
    from cores.evaluation import run_inference
    from cores.inference import load_inference_params
    from cores.symbols import networks
    work = tempfile.mkdtemp(prefix="secbench")
    cfg = load_config(overrides=["BASE_NET=" + backbone, "INPUT_SIZE=%d" % size,
                                 "SNAPSHOT_PATH=" + work])
    symbol = networks.sec_infer_symbol(cfg)
    mod = _module(mx.sym.MakeLoss(mx.sym.mean(symbol)), {"data": (1, 3, size, size)}, [],
                  [mx.cpu()])
    arg, aux = mod.get_params()
    sec = methods.get("sec")
    checkpoint.save_snapshot(stages.prefix(cfg, sec), 1, arg, aux, cfg)
    model = load_inference_params(cfg, sec, 1)
    from datagen import toy, variants
    spec = variants.variant("demo")
    looks = toy.appearances(spec)
    rng = np.random.RandomState(0)
    entries = []
    for i in range(images + warmup):
        path = os.path.join(work, "%03d.jpg" % i)
        # toy scenes at VOC's typical 500x375: the CRF's lattice costs more on pure noise
        scene = Image.fromarray(toy.render(rng, spec, looks)[0])
        scene.resize((500, 375), Image.BILINEAR).save(path)
        entries.append({"id": "%03d" % i, "image": path, "mask": None})
    flip, use_crf = "flip" in stage, "crf" in stage
    if stage.endswith("int8"):
        model = _int8(cfg, *model[:3], entries[:4], True) + (model[3],)
    run_inference(cfg, [mx.cpu()], entries[:warmup], model, flip, use_crf,
                  mask_dir=os.path.join(work, "warm"))
    # the floor, measured in the same process between the eval rounds (this VM's speed
    # drifts by 10-20 % from minute to minute): the bare forward (two for --flip) per image
    from cores.data.iterators import inference_stream
    from cores.evaluation import predict_probs
    from cores.inference import bind_inference
    floor_mod = bind_inference(cfg, [mx.cpu()], model[0], model[1], model[2], 2 if flip else 1)
    _, data, _, _ = next(inference_stream(cfg, entries[:1], workers=1, corners=True))
    evals, floors, in_loop, passes = [], [], [], []
    for _ in range(rounds):
        tic = time.perf_counter()
        for _ in range(images):
            predict_probs(floor_mod, data, flip)
        floors.append((time.perf_counter() - tic) / images)
        marks = []     # steady state: from the first forward's end to the last image's end
        run_inference(cfg, [mx.cpu()], entries[warmup:], model, flip, use_crf,
                      marks=marks)              # metrics only, as eval.py without --savemask
        steady = marks[-1][1] - marks[0][1]
        evals.append(steady / (images - 1))
        # the same interval over the network's own passes in it: the pipeline's overhead
        # measured on the same images at the same moment, immune to the VM's drift
        inside = [end - start for start, end in marks[1:-1]]
        in_loop.append(steady / sum(inside))
        passes.append(sum(inside) / len(inside))
    return evals, floors, in_loop, passes


def child(args):
    import numpy as np
    if args.stage == "crf_op":
        serial, n = run_crf(args.steps, args.warmup, 1)
        parallel, _ = run_crf(args.steps, args.warmup, 2)
        result = {"serial_s": float(np.median(serial)), "parallel_s": float(np.median(parallel)),
                  "speedup": float(np.median(serial) / np.median(parallel))}
        times = parallel
    elif args.stage.startswith("eval"):
        times, floors, in_loop, passes = run_eval(args.stage, args.backbone, args.size,
                                                  args.images, args.warmup, args.rounds)
        n = 1
        ratios = np.array(times) / np.array(floors)
        result = {"s_per_image": float(np.median(times)),
                  "floor_s_per_image": float(np.median(floors)),
                  "over_floor": float(np.median(ratios)),
                  "over_floor_min_max": [float(ratios.min()), float(ratios.max())],
                  "fastest_over_fastest": float(min(times) / min(floors)),
                  "over_own_passes": float(np.median(in_loop)),
                  "over_own_passes_min_max": [float(min(in_loop)), float(max(in_loop))],
                  # per round: is a pass inside eval slower than a bare one? (drift aside)
                  "rounds": {"eval_s": times, "bare_s": floors, "pass_in_eval_s": passes,
                             "over_own_passes": in_loop}}
    else:
        times, n = run_stage(args.stage, args.backbone, args.size, args.batch, args.steps,
                             args.warmup)
        result = {}
    times = np.array(times)
    rates = n / times
    result.update(stage=args.stage, backbone=args.backbone, size=args.size, batch=n,
                  steps=len(times), s_per_step_median=float(np.median(times)),
                  s_per_step_max=float(times.max()),
                  max_over_median=float(times.max() / np.median(times)),
                  images_per_s_median=float(np.median(rates)),
                  images_per_s_min=float(rates.min()), images_per_s_max=float(rates.max()),
                  peak_rss_mb=_peak_rss_mb())
    print("RESULT " + json.dumps(result), flush=True)


def markdown(results, args):
    lines = ["| stage | backbone | images/s (median) | min..max | s/step | max/median | "
             "peak RSS MB | notes |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for r in results:
        notes = ""
        if "speedup" in r:
            notes = "serial %.3f s, 2 workers %.3f s: %.2fx" % (r["serial_s"], r["parallel_s"],
                                                               r["speedup"])
        if "s_per_image" in r:
            notes = ("%.3f s/image; over the bare forward%s (%.3f s, interleaved): median %.3fx "
                     "(%.3f..%.3f), fastest/fastest %.3fx" % (
                         r["s_per_image"], " (2 images)" if "flip" in r["stage"] else "",
                         r["floor_s_per_image"], r["over_floor"], r["over_floor_min_max"][0],
                         r["over_floor_min_max"][1], r["fastest_over_fastest"]))
            if "over_own_passes" in r:
                notes += "; over its own passes %.3fx (%.3f..%.3f)" % (
                    r["over_own_passes"], *r["over_own_passes_min_max"])
        lines.append("| %s | %s | %.2f | %.2f..%.2f | %.3f | %.2f | %.0f | %s |" % (
            r["stage"], r["backbone"], r["images_per_s_median"], r["images_per_s_min"],
            r["images_per_s_max"], r["s_per_step_median"], r["max_over_median"],
            r["peak_rss_mb"], notes))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbones", nargs="+", default=["vgg16", "resnet50"])
    parser.add_argument("--stages", nargs="+", default=STAGES + INT8_STAGES,
                        choices=STAGES + INT8_STAGES)
    parser.add_argument("--size", type=int, default=321)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--images", type=int, default=8, help="images per eval stage")
    parser.add_argument("--rounds", type=int, default=3,
                        help="eval stages: rounds of (bare forward, eval) in one process")
    parser.add_argument("--out", default=os.path.join(ROOT, "bench_run", "speed"),
                        help="output files' path without extension (default in bench_run/, "
                             "ignored by git)")
    parser.add_argument("--record", default=None, metavar="NAME",
                        help="also copy the result to bench/results/speed/NAME/ (committed "
                             "results: see bench/README.md)")
    parser.add_argument("--no-ftz", action="store_true",
                        help="leave denormals on in the network floors (net_fwd_bwd, net_fwd) to "
                             "see their cost; the scripts' own functions always flush them")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--backbone", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    results = []
    for backbone in args.backbones:
        for stage in args.stages:
            if stage == "crf_op" and backbone != args.backbones[0]:
                continue                     # the CRF does not depend on the backbone
            cmd = [sys.executable, os.path.abspath(__file__), "--child", "--stage", stage,
                   "--backbone", backbone, "--size", str(args.size), "--batch",
                   str(args.batch), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--images", str(args.images), "--rounds", str(args.rounds)]
            env = dict(os.environ, **({"SEC_BENCH_NO_FTZ": "1"} if args.no_ftz else {}))
            out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, env=env)
            line = [l for l in out.stdout.splitlines() if l.startswith("RESULT ")]
            if out.returncode or not line:
                print("%s/%s failed:\n%s" % (stage, backbone, out.stderr[-2000:]))
                continue
            results.append(json.loads(line[0][len("RESULT "):]))
            print(markdown(results[-1:], args).splitlines()[-1], flush=True)
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    meta = {"size": args.size, "batch": args.batch, "steps": args.steps, "ftz": not args.no_ftz,
            "warmup": args.warmup, "cpus": os.cpu_count(),
            "date": time.strftime("%Y-%m-%d %H:%M")}
    from bench.provenance import provenance, record
    with open(args.out + ".json", "w") as f:
        json.dump({"settings": meta, "results": results, "provenance": provenance()}, f,
                  indent=1)
    with open(args.out + ".md", "w") as f:
        f.write("Settings: %s\n\n%s\n" % (json.dumps(meta), markdown(results, args)))
    if results:
        from cores.figures import grouped_bars
        names = list(dict.fromkeys(r["stage"] for r in results))
        nets = list(dict.fromkeys(r["backbone"] for r in results))
        rate = {(r["stage"], r["backbone"]): r["images_per_s_median"] for r in results}
        grouped_bars(args.out + ".png", names, nets,
                     [[rate.get((s, n)) for n in nets] for s in names], "images/s (median)",
                     "input %d, batch %d" % (args.size, args.batch))
    print("\n" + markdown(results, args))
    if args.record:
        print("recorded in %s" % record("speed", args.record, args.out))


if __name__ == "__main__":
    main()
