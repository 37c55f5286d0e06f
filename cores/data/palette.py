"""The PASCAL VOC class names and colour palette (masks and cue pictures are palette PNGs)."""
import numpy as np
from PIL import Image

VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
]


def voc_palette():
    """The 256-entry VOC colour map (bit-interleaved, as VOCdevkit's labelcolormap), flat list."""
    palette = np.zeros((256, 3), np.uint8)
    for i in range(256):
        c, r, g, b = i, 0, 0, 0
        for bit in range(8):
            r |= ((c >> 0) & 1) << (7 - bit)
            g |= ((c >> 1) & 1) << (7 - bit)
            b |= ((c >> 2) & 1) << (7 - bit)
            c >>= 3
        palette[i] = (r, g, b)
    return palette


def save_palette_png(path, labels):
    """Write a (H, W) uint8 label map as a VOC-coloured palette PNG."""
    image = Image.fromarray(np.asarray(labels, np.uint8), mode="P")
    image.putpalette(voc_palette().ravel().tolist())
    image.save(path, format="PNG")


def colorize(labels):
    """(H, W) label map -> (H, W, 3) uint8 RGB in VOC colours."""
    return voc_palette()[np.asarray(labels, np.uint8)]
