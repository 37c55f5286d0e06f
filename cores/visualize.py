"""Pictures a person looks at: cues and predictions beside image and ground truth, mask overlays
(loss curves and charts: cores/figures.py)."""
import cv2
import numpy as np
from PIL import Image

from cores.data.palette import colorize
from cores.io import atomic_path


def _upsample(labels, size):
    return cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)


def label_tiles(rgb, label_maps, scale=6):
    """image | each label map (VOC colours; 255 = no cue / void, drawn light), side by side at
    ``scale`` pixels per grid cell: an (H, W, 3) uint8 array. ``None`` maps are left out."""
    maps = [m for m in label_maps if m is not None]
    size = maps[0].shape[0] * scale
    tiles = [cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR)]
    tiles += [colorize(_upsample(m.astype(np.uint8), size)) for m in maps]
    return np.concatenate(tiles, axis=1)


def cue_picture(path, rgb, cue_labels, gt_labels=None, scale=6):
    """image | cues | ground truth, as a PNG."""
    with atomic_path(path) as tmp:
        Image.fromarray(label_tiles(rgb, [cue_labels, gt_labels], scale)).save(tmp,
                                                                              format="PNG")


def legend_picture(path, classes, row=22):
    """Each class's VOC colour beside its name (the key to the masks and overlays), a PNG."""
    width = 16 + 10 * max(len(c) for c in classes) + 40
    picture = np.full((row * len(classes) + 8, width, 3), 255, np.uint8)
    colours = colorize(np.arange(len(classes)))
    for i, name in enumerate(classes):
        top = 4 + i * row
        picture[top:top + row - 4, 6:30] = colours[i]
        cv2.rectangle(picture, (6, top), (29, top + row - 5), (0, 0, 0), 1)
        cv2.putText(picture, "%d %s" % (i, name), (38, top + row - 8), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 0, 0), 1, cv2.LINE_AA)
    with atomic_path(path) as tmp:
        Image.fromarray(picture).save(tmp, format="PNG")


def overlay_picture(path, rgb, labels, alpha=0.5):
    """image | image blended with the mask in VOC colours."""
    blend = (rgb * (1 - alpha) + colorize(labels) * alpha).astype(np.uint8)
    blend[labels == 0] = rgb[labels == 0]
    with atomic_path(path) as tmp:
        Image.fromarray(np.concatenate([rgb, blend], axis=1)).save(tmp, format="PNG")
