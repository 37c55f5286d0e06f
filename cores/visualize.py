"""Pictures a person looks at: cues beside image and ground truth, mask overlays, loss curves."""
import cv2
import numpy as np
from PIL import Image, ImageDraw

from cores.data.palette import colorize
from cores.io import atomic_path


def _upsample(labels, size):
    return cv2.resize(labels, (size, size), interpolation=cv2.INTER_NEAREST)


def cue_picture(path, rgb, cue_labels, gt_labels=None, scale=6):
    """image | cues | ground truth (VOC colours; 255 = no cue / void, drawn light)."""
    size = cue_labels.shape[0] * scale
    tiles = [cv2.resize(rgb, (size, size), interpolation=cv2.INTER_LINEAR),
             colorize(_upsample(cue_labels, size))]
    if gt_labels is not None:
        tiles.append(colorize(_upsample(gt_labels, size)))
    with atomic_path(path) as tmp:
        Image.fromarray(np.concatenate(tiles, axis=1)).save(tmp, format="PNG")


def overlay_picture(path, rgb, labels, alpha=0.5):
    """image | image blended with the mask in VOC colours."""
    blend = (rgb * (1 - alpha) + colorize(labels) * alpha).astype(np.uint8)
    blend[labels == 0] = rgb[labels == 0]
    with atomic_path(path) as tmp:
        Image.fromarray(np.concatenate([rgb, blend], axis=1)).save(tmp, format="PNG")


def loss_curves(path, history, keys, width=640, height=360):
    """Loss per iteration (one coloured polyline per key, a 20-iteration moving average)."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    margin = 40
    if history:
        iters = np.array([h["iter"] for h in history], float)
        series = {k: np.array([h[k] for h in history], float) for k in keys}
        window = min(20, len(iters))
        smooth = {k: np.convolve(v, np.ones(window) / window, mode="valid")
                  for k, v in series.items()}
        x = iters[window - 1:]
        top = max(float(np.max(v)) for v in smooth.values()) or 1.0
        span = max(x[-1] - x[0], 1.0)
        colours = [(200, 30, 30), (30, 140, 30), (30, 60, 200), (150, 100, 0)]
        for n, (key, values) in enumerate(smooth.items()):
            pts = [(margin + (xi - x[0]) / span * (width - 2 * margin),
                    height - margin - v / top * (height - 2 * margin)) for xi, v in zip(x, values)]
            if len(pts) > 1:
                draw.line(pts, fill=colours[n % 4], width=2)
            draw.text((margin + 150 * n, 8), key, fill=colours[n % 4])
        draw.text((margin, height - margin + 8), "iter %d" % x[0], fill="black")
        draw.text((width - margin - 60, height - margin + 8), "iter %d" % x[-1], fill="black")
        draw.text((4, margin - 12), "%.3g" % top, fill="black")
        draw.text((margin - 12, height - margin - 12), "0", fill="black")
    draw.rectangle([margin, margin, width - margin, height - margin], outline="black")
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
