"""What this machine's MXNet does on its GPUs, as one table (make gpu-check): the build's features,
each GPU with its compute capability (the preflight), the suite's device tests on a GPU, one SEC
training step at full size (321, batch 15; VGG16 and ResNet50) and eval --crf --flip per image,
on one GPU and on the same GPU listed twice (--gpus 0,0: the multi-device path), beside the CPU.
Without a usable GPU it ends with the preflight's one line. --cpu builds the same table on CPU
contexts (the test of this tool; small sizes with --size/--batch/--width)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from cores.runtime import run_script  # noqa: E402


def sec_step_seconds(backbone, size, batch, ctx, width=1.0, steps=2):
    """Seconds of one SEC training step (forward, backward, update; CRF and losses included)
    on ``ctx`` with random data, after one warm-up step."""
    import mxnet as mx
    import numpy as np
    from cores import methods, stages
    from cores.config import load_config
    cfg = load_config(overrides=["BASE_NET=" + backbone, "INPUT_SIZE=%d" % size,
                                 "WIDTH_MULT=%s" % width])
    grid = stages.score_size(cfg)
    rng = np.random.RandomState(0)
    labels = np.zeros((batch, cfg.CLASS_NUM), np.float32)
    labels[:, 0] = 1
    labels[np.arange(batch), 1 + np.arange(batch) % (cfg.CLASS_NUM - 1)] = 1
    cue = (rng.rand(batch, cfg.CLASS_NUM, grid, grid) < 0.02).astype(np.float32) * labels[
        :, :, None, None]
    data = mx.io.DataBatch(
        data=[mx.nd.array(rng.randn(batch, 3, size, size) * 50),
              mx.nd.array(rng.randint(0, 256, (batch, grid, grid, 3)))],
        label=[mx.nd.array(labels), mx.nd.array(cue)])
    mod = mx.mod.Module(methods.get("sec").symbol(cfg), data_names=["data", "small_images"],
                        label_names=["labels", "cues"], context=ctx)
    mod.bind(data_shapes=[("data", (batch, 3, size, size)),
                          ("small_images", (batch, grid, grid, 3))],
             label_shapes=[("labels", (batch, cfg.CLASS_NUM)),
                           ("cues", (batch, cfg.CLASS_NUM, grid, grid))])
    mod.init_params(mx.init.Xavier(magnitude=2))
    mod.init_optimizer(kvstore="device", optimizer="sgd",
                       optimizer_params={"learning_rate": 1e-3, "momentum": 0.9})
    times = []
    for _ in range(steps):
        tic = time.perf_counter()
        mod.forward_backward(data)
        mod.update()
        for out in mod.get_outputs():
            out.wait_to_read()
        times.append(time.perf_counter() - tic)
    return min(times[1:] or times)


def eval_seconds(backbone, size, ctx, images, width=1.0):
    """Seconds per image of eval --crf --flip's pipeline (cores/evaluation.run_inference) on
    synthetic 500x375 JPEGs with a random SEC snapshot; eval runs on the first context."""
    import mxnet as mx
    import numpy as np
    from PIL import Image
    from cores import checkpoint, methods, stages
    from cores.config import load_config
    from cores.evaluation import run_inference
    from cores.inference import load_inference_params
    from cores.symbols import networks
    work = tempfile.mkdtemp(prefix="gpucheck")
    cfg = load_config(overrides=["BASE_NET=" + backbone, "INPUT_SIZE=%d" % size,
                                 "WIDTH_MULT=%s" % width, "SNAPSHOT_PATH=" + work])
    symbol = networks.sec_infer_symbol(cfg)
    shapes, _, aux_shapes = symbol.infer_shape(data=(1, 3, size, size))
    rng = np.random.RandomState(0)
    arg = {n: mx.nd.array(rng.randn(*s) * 0.01) for n, s in zip(symbol.list_arguments(), shapes)
           if n != "data"}
    aux = {n: mx.nd.ones(s) for n, s in zip(symbol.list_auxiliary_states(), aux_shapes)}
    sec = methods.get("sec")
    checkpoint.save_snapshot(stages.prefix(cfg, sec), 1, arg, aux, cfg)
    entries = []
    for i in range(images + 1):
        path = os.path.join(work, "%d.jpg" % i)
        Image.fromarray(rng.randint(0, 256, (375, 500, 3)).astype(np.uint8)).save(path)
        entries.append({"id": str(i), "image": path, "mask": None})
    model = load_inference_params(cfg, sec, 1)
    run_inference(cfg, ctx, entries[:1], model, True, True)             # warm-up
    tic = time.perf_counter()
    run_inference(cfg, ctx, entries[1:], model, True, True)
    return (time.perf_counter() - tic) / images


def device_tests(device):
    """(passed, failed) of the suite's device tests (pytest -m device) on ``device``."""
    env = dict(os.environ, SEC_TEST_DEVICE=device)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "device",
                           "-p", "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True,
                          text=True)
    last = [line for line in done.stdout.splitlines() if " passed" in line or " failed" in line]
    counts = {"passed": 0, "failed": 0}
    for part in (last[-1] if last else "").replace("=", "").split(","):
        words = part.split()
        if len(words) >= 2 and words[1] in counts:
            counts[words[1]] = int(words[0])
    return counts["passed"], counts["failed"] + (0 if done.returncode in (0, 1, 5) else 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cpu", action="store_true",
                        help="the table on CPU contexts (no GPU needed)")
    parser.add_argument("--size", type=int, default=321)
    parser.add_argument("--batch", type=int, default=15)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--images", type=int, default=5, help="images timed for eval")
    parser.add_argument("--backbones", default="vgg16,resnet50")
    parser.add_argument("--no-tests", action="store_true", help="skip the device tests")
    parser.add_argument("--out", default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    import mxnet as mx
    from cores import gpus
    probe = gpus.Probe()
    build, features = probe.build()
    rows = [("MXNet build", build)]
    rows += [("feature " + k, "on" if v else "off") for k, v in sorted(features.items())]
    if args.cpu:
        one, two, device = [mx.cpu(0)], [mx.cpu(0), mx.cpu(0)], "cpu"
        rows.append(("devices", "CPU contexts (--cpu)"))
    else:
        count = probe.gpu_count()
        for gpu, name, (major, minor) in gpus.preflight(list(range(max(1, count))), probe):
            rows.append(("GPU %d" % gpu, "%s, compute capability %d.%d" % (name, major, minor)))
        one, two, device = [mx.gpu(0)], [mx.gpu(0), mx.gpu(0)], "gpu"
    if not args.no_tests:
        passed, failed = device_tests(device)
        rows.append(("device tests on %s" % device, "%d passed, %d failed" % (passed, failed)))
    for backbone in args.backbones.split(","):
        shape = "%s %d, batch %d" % (backbone, args.size, args.batch)
        for label, ctx in (("one %s" % device, one), ("%s listed twice" % device, two)):
            rows.append(("SEC step s, %s, %s" % (shape, label), "%.3f" % sec_step_seconds(
                backbone, args.size, args.batch, ctx, args.width)))
        if not args.cpu:
            rows.append(("SEC step s, %s, CPU" % shape, "%.3f" % sec_step_seconds(
                backbone, args.size, args.batch, [mx.cpu()], args.width, steps=1)))
        rows.append(("eval --crf --flip s/image, %s %d, %s" % (backbone, args.size, device),
                     "%.3f" % eval_seconds(backbone, args.size, one, args.images, args.width)))
        if not args.cpu:
            rows.append(("eval --crf --flip s/image, %s %d, CPU" % (backbone, args.size),
                         "%.3f" % eval_seconds(backbone, args.size, [mx.cpu()], 2,
                                               args.width)))
    width = max(len(k) for k, _ in rows)
    print("| %-*s | %s |\n|%s|---|" % (width, "what", "value", "-" * (width + 2)))
    for key, value in rows:
        print("| %-*s | %s |" % (width, key, value))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(rows), f, indent=1)


if __name__ == "__main__":
    run_script(main)
