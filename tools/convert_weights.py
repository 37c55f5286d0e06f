"""Convert pretrained weights into MODEL_PATH/<net>.params (+ a JSON sidecar with the channel
order and pixel mean they expect), or a released trained SEC network into a snapshot:

  --caffe MODEL.caffemodel [--prototxt NET.prototxt]   DeepLab vgg16_20M / Caffe ResNet-50
  --gluon FILE.params                                   Gluon model-zoo vgg16 / resnet50_v1
  --stage sec --caffe SEC.caffemodel                    the authors' trained SEC model
  --port-snapshot SEC_vgg16-8.params [--net resnet50]   the earlier MXNet port's trained SEC

A trained network becomes SNAPSHOT_PATH/sec_<net>-NNNN.params with the config it runs with
stored in it (the port's: configs/port.yaml); eval.py then evaluates it as its own.
"""
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cores import stages  # noqa: E402
from cores.checkpoint import save_weights  # noqa: E402
from cores.runtime import fail, parse_args, run_script, setup_logging  # noqa: E402
from cores.backbones import NAMES  # noqa: E402
from cores.symbols.networks import pretrained_shapes  # noqa: E402
from cores.weights import convert_caffe, convert_gluon  # noqa: E402


def add_arguments(parser):
    parser.add_argument("--net", choices=NAMES, default=None,
                        help="backbone (default: BASE_NET)")
    parser.add_argument("--caffe", help="a .caffemodel")
    parser.add_argument("--prototxt", help="its deploy/train prototxt (checks layer names)")
    parser.add_argument("--gluon", help="a Gluon model-zoo parameter file")
    parser.add_argument("--out", help="output .params (default: MODEL_PATH/<net>.params)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse layers that the prototxt does not define or that no "
                             "network uses (default: list and skip them)")
    parser.add_argument("--stage", choices=["sec"], default=None,
                        help="--caffe holds a trained SEC network (the authors' release), "
                             "written as a snapshot of that method")
    parser.add_argument("--port-snapshot", metavar="FILE.params",
                        help="a trained SEC snapshot of the earlier MXNet port, written as a "
                             "snapshot with the port's recipe (configs/port.yaml)")
    parser.add_argument("--epoch", type=int, default=None,
                        help="the snapshot's epoch (default: the port file's, else the last "
                             "of the schedule)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace a snapshot of that epoch")


def convert_trained(args, cfg):
    """A released trained SEC network to a snapshot of this project's."""
    from cores import released
    from cores.config import load_config
    if args.port_snapshot:
        if args.caffe or args.gluon or args.stage:
            fail("--port-snapshot converts a port snapshot alone")
        cfg = load_config([released.PORT_RECIPE] + list(args.cfg), args.set +
                          (["BASE_NET=" + args.net] if args.net else []))
        arg, aux = released.from_port(cfg, args.port_snapshot)
        epoch = args.epoch or released.port_epoch(args.port_snapshot)
        run = "python eval.py --cfg configs/port.yaml%s --crf --flip" % (
            " --set BASE_NET=" + cfg.BASE_NET if cfg.BASE_NET != "vgg16" else "")
    else:
        if not args.caffe or args.gluon:
            fail("--stage sec converts a trained SEC model given with --caffe")
        arg, aux = released.from_caffe(cfg, args.caffe, args.prototxt)
        epoch, run = args.epoch, "python eval.py --crf --flip"
    path = released.save(cfg, arg, aux, epoch, args.overwrite)
    logging.info("evaluate it with: %s   (the config it runs with is stored in %s)", run, path)


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    setup_logging(cfg, "convert_weights")
    if args.stage or args.port_snapshot:
        return convert_trained(args, cfg)
    net = args.net or cfg.BASE_NET
    if bool(args.caffe) == bool(args.gluon):
        fail("give one of --caffe or --gluon")
    if args.caffe:
        expected = pretrained_shapes(type(cfg)(cfg, BASE_NET=net))
        arg, aux, meta = convert_caffe(args.caffe, net, cfg.CHANNEL_ORDER, args.prototxt,
                                       args.strict, expected)
    else:
        arg, aux, meta = convert_gluon(args.gluon, net, cfg.CHANNEL_ORDER)
    out = args.out or stages.weights_path(cfg, net)
    save_weights(out, arg, aux, meta)
    logging.info("wrote %s: %d parameters, %d auxiliary states; input %s with PIXEL_MEAN %s",
                 out, len(arg), len(aux), meta["channel_order"],
                 [round(m, 3) for m in meta["pixel_mean"]])
    if max(abs(a - b) for a, b in zip(meta["pixel_mean"], cfg.PIXEL_MEAN)) > 0.5:
        logging.info("set PIXEL_MEAN and PIXEL_MEAN_CUES: %s in your config to use these "
                     "weights", [round(m, 3) for m in meta["pixel_mean"]])


if __name__ == "__main__":
    run_script(main)
