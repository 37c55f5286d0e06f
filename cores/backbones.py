"""The backbones the networks can be built on: one entry each, with what the rest of the code
needs to know of a backbone without building it (no MXNet here: the config validates BASE_NET
with it). Everything else of a backbone is its module, cores/symbols/<name>.py: its body, the
SEC/CAM/saliency networks and pretraining features on it (``sec_scores``, ``crf_unary``,
``cam_body``, ``saliency_scores``, ``pretrain_features``), and its Gluon weights
(``GLUON_MODEL``, ``gluon_params``); cores/symbols/networks.py assembles them. A new backbone
is an entry here, its module, and its line in networks.BACKBONE_MODULES.

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
