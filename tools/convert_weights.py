"""Convert pretrained weights into MODEL_PATH/<net>.params (+ a JSON sidecar with the channel
order and pixel mean they expect):

  --caffe MODEL.caffemodel [--prototxt NET.prototxt]   DeepLab vgg16_20M / Caffe ResNet-50
  --gluon FILE.params                                   Gluon model-zoo vgg16 / resnet50_v1
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


def main():
    args, cfg = parse_args(__doc__, add_arguments)
    setup_logging(cfg, "convert_weights")
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
