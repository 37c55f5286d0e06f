"""The backbones the networks can be built on: one entry each, with what the rest of the code
needs to know of a backbone without building it (no MXNet here: the config validates BASE_NET
with it). The builders are in cores/symbols/networks.py, one per backbone module
(cores/symbols/vgg16.py, resnet50.py); a new backbone is an entry here, its module, and its
builders there.

- first_conv: the weight of the first convolution, whose input channels CHANNEL_ORDER describes
  (what a converted weights file must contain);
- options: the config keys that belong to this backbone alone."""

BACKBONES = {
    "vgg16": {"first_conv": "conv1_1_weight", "options": ()},
    "resnet50": {"first_conv": "conv1_weight",
                 "options": ("RESNET_BN", "RESNET_CAM_DILATION", "RESNET_SALIENCY_LAYER",
                             "RESNET_CRF_UNARY")},
}
NAMES = sorted(BACKBONES)
