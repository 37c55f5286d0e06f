"""The project's dataset index: VOC 2012 + SBD (method §1) or a user's own data, checked on build.

Index files under DATASET_PATH (JSON, written atomically, all or nothing):
  classes.json    class names, index 0 = background
  train_aug.json  [{"id", "image", "labels": [fg class ids], "mask": path or null}]
  val.json        [{"id", "image", "mask": path or null}]
Masks of training images are kept for cue reports only; training never reads them.
"""
import csv
import io
import json
import logging
import os

import numpy as np
import scipy.io
from PIL import Image

from cores.data.palette import VOC_CLASSES
from cores.errors import SECError
from cores.io import atomic_path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")

INDEX_FILES = ("classes.json", "train_aug.json", "val.json")


class DatasetError(SECError):
    """Bad or missing input data; the message names the file and the problem."""


def _require_dir(path, what):
    if not os.path.isdir(path):
        raise DatasetError("%s not found: %s (set the path in the config or with --set)"
                           % (what, path))


def read_list(path):
    if not os.path.isfile(path):
        raise DatasetError("image list not found: %s" % path)
    with open(path) as f:
        return [line.split()[0] for line in f if line.strip()]


def read_mask(path):
    """Class map (H, W) uint8 from a VOC palette PNG or an SBD ``cls/*.mat``."""
    if not os.path.isfile(path):
        raise DatasetError("mask not found: %s" % path)
    try:
        if path.endswith(".mat"):
            mat = scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
            return np.asarray(mat["GTcls"].Segmentation, dtype=np.uint8)
        with Image.open(path) as im:
            if im.mode not in ("P", "L"):
                raise DatasetError("mask %s has mode %s; expected a palette (P) or grayscale "
                                   "PNG of class ids" % (path, im.mode))
            return np.array(im, dtype=np.uint8)
    except DatasetError:
        raise
    except Exception as e:  # a corrupt file: name it
        raise DatasetError("cannot read mask %s: %s" % (path, e)) from None


MODE_NAMES = {"L": "grayscale", "LA": "grayscale", "1": "grayscale", "CMYK": "CMYK",
              "P": "palette", "PA": "palette", "RGBA": "RGBA", "I;16": "16-bit",
              "I;16B": "16-bit", "I;16L": "16-bit", "I;16N": "16-bit", "I": "32-bit integer",
              "F": "32-bit float"}
# modes whose values exceed 8 bits: scaled to 0-255 when read, not clipped (a 16-bit PNG
# clipped by a plain RGB conversion saturates to white)
HIGH_DEPTH = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def check_image(path):
    """((width, height), mode) of an image that decodes completely (a truncated JPEG is an
    error naming the file); non-RGB images (grayscale, palette, CMYK) are converted to RGB when
    read, as the original does (method §6)."""
    if not os.path.isfile(path):
        raise DatasetError("image not found: %s" % path)
    try:
        with Image.open(path) as im:
            mode, size = im.mode, im.size
            im.load()                    # decodes all data: verify() misses truncated JPEGs
    except Exception as e:
        raise DatasetError("cannot read image %s (unreadable or truncated): %s" % (path, e)) \
            from None
    if mode not in MODE_NAMES and mode != "RGB":
        raise DatasetError("image %s has mode %s, which cannot be converted to RGB" % (path,
                                                                                       mode))
    return size, mode


def _inspect(job):
    """Check one entry; returns (entry with labels filled, error message or None)."""
    entry, class_num, need_labels = job
    try:
        size, mode = check_image(entry["image"])
        if mode != "RGB":
            entry = dict(entry, converted=MODE_NAMES[mode])
        if entry.get("mask"):
            mask = read_mask(entry["mask"])
            if mask.shape != (size[1], size[0]):
                raise DatasetError("mask %s is %dx%d but its image %s is %dx%d"
                                   % (entry["mask"], mask.shape[1], mask.shape[0],
                                      entry["image"], size[0], size[1]))
            values = np.unique(mask)
            bad = [int(v) for v in values if v >= class_num and v != 255]
            if bad:
                raise DatasetError("mask %s has values %s that are neither a class id below "
                                   "CLASS_NUM=%d nor 255" % (entry["mask"], bad, class_num))
            if "labels" not in entry:
                entry = dict(entry, labels=[int(v) for v in values if 0 < v < 255])
        if need_labels and not entry.get("labels"):
            raise DatasetError("image %s has no foreground label%s" % (
                entry["image"], " (its mask %s holds only background/void)" % entry["mask"]
                if entry.get("mask") else ""))
        return entry, None
    except DatasetError as e:
        return entry, str(e)


def _inspect_all(entries, class_num, need_labels, workers):
    jobs = [(e, class_num, need_labels) for e in entries]
    if workers > 1 and len(jobs) > 64:
        from cores.workers import process_pool
        with process_pool(workers) as pool:
            results = list(pool.map(_inspect, jobs, chunksize=32))
    else:
        results = [_inspect(j) for j in jobs]
    errors = [err for _, err in results if err]
    if errors:
        more = "" if len(errors) == 1 else "\n(%d problems; first ones shown)" % len(errors)
        raise DatasetError("\n".join(errors[:10]) + more)
    entries = [entry for entry, _ in results]
    converted = [e.pop("converted") for e in entries if "converted" in e]
    if converted:
        counts = {k: converted.count(k) for k in sorted(set(converted))}
        logging.info("%d of %d images are not RGB and are converted when read (%s), as the "
                     "original does", len(converted), len(entries),
                     ", ".join("%s %d" % kv for kv in counts.items()))
    return entries


def class_names_for(class_num, names_file=None):
    """VOC's first ``class_num`` names, or the names in ``names_file`` (background implied)."""
    if names_file:
        names = read_class_file(names_file)
        if len(names) != class_num:
            raise DatasetError("%s names %d classes with background, but CLASS_NUM=%d"
                               % (names_file, len(names), class_num))
        return names
    if class_num > len(VOC_CLASSES):
        raise DatasetError("CLASS_NUM=%d exceeds VOC's 21 classes; give a class-name file"
                           % class_num)
    return VOC_CLASSES[:class_num]


def read_class_file(path):
    """Foreground class names, one per line; 'background' is prepended unless listed first."""
    if not os.path.isfile(path):
        raise DatasetError("class-name file not found: %s" % path)
    with open(path) as f:
        names = [line.strip() for line in f if line.strip()]
    if not names or names[0] != "background":
        names = ["background"] + names
    if len(set(names)) != len(names):
        raise DatasetError("%s lists a class name twice" % path)
    return names


def build_voc_index(voc_path, sbd_path, class_num=21, names_file=None, workers=1):
    """train_aug = SBD train+val minus VOC12 seg train/val, plus VOC12 seg train; val = VOC12
    seg val (method §1). Labels come from the masks: unique values other than 0 and 255."""
    _require_dir(voc_path, "VOC2012 folder (VOCDEVKIT_PATH)")
    _require_dir(sbd_path, "SBD dataset folder (SBD_PATH)")
    seg = os.path.join(voc_path, "ImageSets", "Segmentation")
    voc_train = read_list(os.path.join(seg, "train.txt"))
    voc_val = read_list(os.path.join(seg, "val.txt"))
    sbd_ids = read_list(os.path.join(sbd_path, "train.txt")) + read_list(
        os.path.join(sbd_path, "val.txt"))
    exclude = set(voc_train) | set(voc_val)
    seen = set()
    train = []
    for image_id in sbd_ids:
        if image_id in exclude or image_id in seen:
            continue
        seen.add(image_id)
        train.append({"id": image_id, "image": os.path.join(sbd_path, "img", image_id + ".jpg"),
                      "mask": os.path.join(sbd_path, "cls", image_id + ".mat")})
    for image_id in voc_train:
        train.append({"id": image_id,
                      "image": os.path.join(voc_path, "JPEGImages", image_id + ".jpg"),
                      "mask": os.path.join(voc_path, "SegmentationClass", image_id + ".png")})
    val = [{"id": i, "image": os.path.join(voc_path, "JPEGImages", i + ".jpg"),
            "mask": os.path.join(voc_path, "SegmentationClass", i + ".png")} for i in voc_val]
    classes = class_names_for(class_num, names_file)
    if not train:
        raise DatasetError("train_aug is empty: the SBD lists %s and the VOC list %s name no "
                           "training image" % (os.path.join(sbd_path, "{train,val}.txt"),
                                               os.path.join(seg, "train.txt")))
    train = _inspect_all(_absolute(train), class_num, True, workers)
    val = _inspect_all(_absolute(val), class_num, False, workers)
    return {"classes": classes, "train": train, "val": [_strip_labels(e) for e in val]}


def _absolute(entries):
    return [dict(e, image=os.path.abspath(e["image"]),
                 mask=os.path.abspath(e["mask"]) if e.get("mask") else None) for e in entries]


def _strip_labels(entry):
    return {"id": entry["id"], "image": entry["image"], "mask": entry["mask"]}


def _read_label_table(path):
    """{image file name: [class names]} from a JSON mapping or a CSV of ``image,labels`` rows
    (labels separated by ';' or spaces). UTF-8 with or without a BOM (spreadsheets write one);
    every problem names the file and the line or image."""
    if not os.path.isfile(path):
        raise DatasetError("label file not found: %s" % path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
    except UnicodeDecodeError as e:
        raise DatasetError("%s is not UTF-8 text (byte %d); save it as UTF-8" % (path, e.start)) \
            from None
    if path.endswith(".json"):
        try:
            table = json.loads(text)
        except ValueError as e:
            raise DatasetError("%s is not valid JSON: %s" % (path, e)) from None
        if not isinstance(table, dict):
            raise DatasetError("%s: expected a JSON object {image: [class names]}" % path)
        for name, value in table.items():
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DatasetError("%s: image %s: expected a list of class names, got %r"
                                   % (path, name, value))
        return {k: list(v) for k, v in table.items()}
    table = {}
    for row_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or (row_no == 1 and row[0].strip().lower() in ("image", "file", "id")):
            continue
        if len(row) < 2:
            raise DatasetError("%s line %d: expected image,labels (an empty label marks a "
                               "background-only image: 'img.jpg,')" % (path, row_no))
        name = row[0].strip()
        if name in table:
            raise DatasetError("%s line %d: image %s is listed twice" % (path, row_no, name))
        table[name] = row[1].replace(";", " ").split()
    return table


def build_custom_index(images_dir, labels_file, classes_file, val_images_dir=None,
                       val_masks_dir=None, class_num=None, workers=1, masks_dir=None):
    """The same index from a folder of images, per-image class names and a class-name list;
    optional val images with palette-PNG masks of the same name stem, and optional training
    masks (``masks_dir``: used only by the supervised bound and the cue reports). An image
    listed with no class name is a background-only image (a one-class problem needs them)."""
    _require_dir(images_dir, "image folder")
    classes = read_class_file(classes_file)
    if class_num is not None and class_num != len(classes):
        raise DatasetError("%s gives %d classes with background but CLASS_NUM=%d; set "
                           "CLASS_NUM=%d" % (classes_file, len(classes), class_num, len(classes)))
    lookup = {name: i for i, name in enumerate(classes)}
    train = []
    stems = {}
    for name in _read_label_table(labels_file):
        stem = os.path.splitext(name)[0]
        if stem in stems:
            raise DatasetError("%s: images %s and %s have the same id %r (the file name without "
                               "its extension names an image's cues and masks); rename one"
                               % (labels_file, stems[stem], name, stem))
        stems[stem] = name
    for name, label_names in sorted(_read_label_table(labels_file).items()):
        unknown = [n for n in label_names if n not in lookup or n == "background"]
        if unknown:
            raise DatasetError("%s: image %s has unknown class names %s (known: %s)"
                               % (labels_file, name, unknown, ", ".join(classes[1:])))
        stem = os.path.splitext(name)[0]
        train.append({"id": stem, "image": os.path.join(images_dir, name),
                      "labels": sorted({lookup[n] for n in label_names}),
                      "mask": os.path.join(masks_dir, stem + ".png") if masks_dir else None})
    if not train:
        raise DatasetError("%s lists no images" % labels_file)
    if not any(e["labels"] for e in train):
        raise DatasetError("%s gives no image a class name" % labels_file)
    listed = {os.path.basename(e["image"]) for e in train}
    unlisted = sorted(n for n in os.listdir(images_dir)
                      if n.lower().endswith(IMAGE_EXTENSIONS) and n not in listed)
    if unlisted:
        raise DatasetError("%d images in %s have no row in %s (list background-only images "
                           "with an empty label), e.g. %s" % (len(unlisted), images_dir,
                                                              labels_file, unlisted[:5]))
    val = []
    if val_images_dir:
        _require_dir(val_images_dir, "val image folder")
        for name in sorted(n for n in os.listdir(val_images_dir)
                           if n.lower().endswith(IMAGE_EXTENSIONS)):
            stem = os.path.splitext(name)[0]
            mask = os.path.join(val_masks_dir, stem + ".png") if val_masks_dir else None
            val.append({"id": stem, "image": os.path.join(val_images_dir, name), "mask": mask})
    train = _inspect_all(_absolute(train), len(classes), False, workers)
    val = _inspect_all(_absolute(val), len(classes), False, workers)
    empty = sum(1 for e in train if not e["labels"])
    if empty:
        logging.info("%d of %d training images are background-only (no class name)", empty,
                     len(train))
    return {"classes": classes, "train": train, "val": [_strip_labels(e) for e in val]}


def write_index(index, dataset_path):
    """Write the three index files; each is renamed into place only once complete."""
    os.makedirs(dataset_path, exist_ok=True)
    contents = {"classes.json": index["classes"], "train_aug.json": index["train"],
                "val.json": index["val"]}
    for name in INDEX_FILES:
        with atomic_path(os.path.join(dataset_path, name)) as tmp:
            with open(tmp, "w") as f:
                json.dump(contents[name], f, indent=1)


def load_index(dataset_path, class_num=None):
    """(classes, train entries, val entries); a clear error when create_dataset.py has not run
    or the index disagrees with CLASS_NUM."""
    paths = [os.path.join(dataset_path, n) for n in INDEX_FILES]
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise DatasetError("dataset index not found: %s; run create_dataset.py first "
                           "(DATASET_PATH=%s)" % (", ".join(missing), dataset_path))
    loaded = []
    for p in paths:
        with open(p) as f:
            loaded.append(json.load(f))
    classes, train, val = loaded
    if class_num is not None and len(classes) != class_num:
        raise DatasetError("%s has %d classes but CLASS_NUM=%d" % (paths[0], len(classes),
                                                                  class_num))
    return classes, train, val


def create_dataset(cfg, names_file=None, custom=None):
    """Build, check and write the index under cfg.DATASET_PATH; returns it. ``custom`` holds
    the custom-mode paths (images, labels, classes, val_images, val_masks)."""
    from cores.workers import worker_count
    from cores.io import check_writable
    check_writable(cfg.DATASET_PATH)
    workers = worker_count(cfg.DATA_WORKERS)
    if custom:
        index = build_custom_index(custom["images"], custom["labels"], custom["classes"],
                                   custom.get("val_images"), custom.get("val_masks"),
                                   cfg.CLASS_NUM, workers, custom.get("masks"))
    else:
        index = build_voc_index(cfg.VOCDEVKIT_PATH, cfg.SBD_PATH, cfg.CLASS_NUM, names_file,
                                workers)
    write_index(index, cfg.DATASET_PATH)
    return index
