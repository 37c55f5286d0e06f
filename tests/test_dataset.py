"""create_dataset: train_aug/val membership and labels (method §1), custom mode, every failure
named, no partial index."""
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cores.data.dataset import DatasetError, build_custom_index, create_dataset, read_mask
from cores.data import transforms
from cores.data.palette import VOC_CLASSES, save_palette_png
from tests.conftest import REPO, toy_config


def test_train_aug_and_val_membership(toy_tree, toy_index):
    _, ids = toy_tree
    cfg, index = toy_index
    sbd = set(ids["sbd_train"]) | set(ids["sbd_val"])
    voc_trainval = set(ids["voc_train"]) | set(ids["voc_val"])
    expected = (sbd - voc_trainval) | set(ids["voc_train"])
    got = [e["id"] for e in index["train"]]
    assert len(got) == len(set(got)) == len(expected) and set(got) == expected
    assert not set(got) & set(ids["voc_val"])            # SBD names VOC val ids: excluded
    assert [e["id"] for e in index["val"]] == ids["voc_val"]
    assert index["classes"] == VOC_CLASSES[:5]
    for e in index["train"]:                              # labels = mask values but 0 and 255
        mask = read_mask(e["mask"])
        assert e["labels"] == sorted(int(v) for v in np.unique(mask) if v not in (0, 255))
        assert e["labels"] and max(e["labels"]) < 5
        source = "SegmentationClass" if e["id"] in ids["voc_train"] else "cls"
        assert source in e["mask"]
    on_disk = json.load(open(os.path.join(cfg.DATASET_PATH, "train_aug.json")))
    assert on_disk == index["train"]


def test_rerun_gives_the_same_index(toy_index):
    cfg, index = toy_index
    before = {n: open(os.path.join(cfg.DATASET_PATH, n)).read()
              for n in ("classes.json", "train_aug.json", "val.json")}
    create_dataset(cfg)
    after = {n: open(os.path.join(cfg.DATASET_PATH, n)).read() for n in before}
    assert before == after
    assert not [f for f in os.listdir(cfg.DATASET_PATH) if f.endswith(".tmp.json")]


def _broken_copy(toy_tree, tmp_path, breaker):
    root = str(tmp_path / "data")
    shutil.copytree(toy_tree[0], root)
    breaker(root, toy_tree[1])
    return toy_config(root, str(tmp_path / "work"))


def _voc(root, *parts):
    return os.path.join(root, "VOCdevkit", "VOC2012", *parts)


def _sbd(root, *parts):
    return os.path.join(root, "benchmark_RELEASE", "dataset", *parts)


def _sbd_only(ids):
    return sorted(set(ids["sbd_train"]) - set(ids["voc_train"]) - set(ids["voc_val"]))


def _write_gray(root, ids):
    path = _sbd(root, "img", _sbd_only(ids)[0] + ".jpg")
    Image.open(path).convert("L").save(path)


def _write_cmyk(root, ids):
    path = _voc(root, "JPEGImages", ids["voc_train"][0] + ".jpg")
    Image.open(path).convert("CMYK").save(path)


def _truncate(path):
    """Cut a JPEG after 60% of its bytes: its header still opens (Image.verify passes)."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * 0.6)])


def test_grayscale_and_cmyk_images_are_converted_and_counted(toy_tree, tmp_path, caplog):
    """Spec 6: the original converts grayscale and palette JPEGs to 3 channels."""
    def both(root, ids):
        _write_gray(root, ids)
        _write_cmyk(root, ids)
    cfg = _broken_copy(toy_tree, tmp_path, both)
    with caplog.at_level("INFO"):
        index = create_dataset(cfg)
    assert "2 of %d images are not RGB" % len(index["train"]) in caplog.text
    assert "CMYK 1, grayscale 1" in caplog.text
    gray = [e for e in index["train"] if e["image"].endswith(_sbd_only(toy_tree[1])[0] +
                                                             ".jpg")][0]
    rgb = transforms.load_rgb(gray["image"])
    assert rgb.shape[2] == 3 and (rgb[..., 0] == rgb[..., 2]).all()


def _resize_mask(root, ids):
    path = _voc(root, "SegmentationClass", ids["voc_train"][1] + ".png")
    save_palette_png(path, read_mask(path)[:-3])


def _bad_value(root, ids):
    path = _voc(root, "SegmentationClass", ids["voc_train"][2] + ".png")
    mask = read_mask(path)
    mask[0, 0] = 7                                   # >= CLASS_NUM (5), not 255
    save_palette_png(path, mask)


def _no_label(root, ids):
    path = _voc(root, "SegmentationClass", ids["voc_train"][3] + ".png")
    mask = read_mask(path)
    mask[(mask > 0) & (mask < 255)] = 0
    save_palette_png(path, mask)


FAILURES = [
    ("missing VOC folder", lambda r, i: shutil.rmtree(_voc(r)), "VOC2012 folder"),
    ("missing SBD list", lambda r, i: os.remove(_sbd(r, "val.txt")), r"image list not found.*val\.txt"),
    ("missing image", lambda r, i: os.remove(_sbd(r, "img", _sbd_only(i)[1] + ".jpg")),
     "image not found.*%s"),
    ("missing mask", lambda r, i: os.remove(_voc(r, "SegmentationClass", i["voc_val"][0] + ".png")),
     "mask not found"),
    ("truncated JPEG", lambda r, i: _truncate(_sbd(r, "img", _sbd_only(i)[2] + ".jpg")),
     r"cannot read image .*\.jpg \(unreadable or truncated\)"),
    ("mask size", _resize_mask, r"mask .*png is \d+x\d+ but its image"),
    ("mask value", _bad_value, r"values \[7\].*CLASS_NUM=5"),
    ("no foreground label", _no_label, "no foreground label"),
]


@pytest.mark.parametrize("name,breaker,pattern", FAILURES, ids=[f[0] for f in FAILURES])
def test_failures_are_named_and_write_nothing(toy_tree, tmp_path, name, breaker, pattern):
    cfg = _broken_copy(toy_tree, tmp_path, breaker)
    with pytest.raises(DatasetError, match=pattern.replace("%s", ".*")):
        create_dataset(cfg)
    assert not os.path.exists(cfg.DATASET_PATH) or not os.listdir(cfg.DATASET_PATH)


@pytest.mark.slow                      # runs a script in a subprocess
def test_script_reports_errors_without_traceback(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(REPO, "create_dataset.py"), "--set",
                          "VOCDEVKIT_PATH=%s" % (tmp_path / "nope"),
                          "LOG_PATH=%s" % (tmp_path / "log")],
                         capture_output=True, text=True, cwd=str(tmp_path))
    assert out.returncode == 1
    assert "VOC2012 folder (VOCDEVKIT_PATH) not found" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def _custom_tree(tmp_path, toy_tree, fmt):
    root, ids = toy_tree
    images = tmp_path / "imgs"
    images.mkdir()
    rows = {}
    for image_id in ids["voc_train"][:4]:
        shutil.copy(_voc(root, "JPEGImages", image_id + ".jpg"), images / (image_id + ".jpg"))
        labels = sorted({int(v) for v in np.unique(read_mask(
            _voc(root, "SegmentationClass", image_id + ".png"))) if 0 < v < 255})
        rows[image_id + ".jpg"] = [["disc", "square", "triangle", "diamond"][v - 1] for v in labels]
    (tmp_path / "classes.txt").write_text("disc\nsquare\ntriangle\ndiamond\n")
    if fmt == "json":
        (tmp_path / "labels.json").write_text(json.dumps(rows))
        return images, tmp_path / "labels.json", rows
    (tmp_path / "labels.csv").write_text("image,labels\n" + "".join(
        "%s,%s\n" % (k, ";".join(v)) for k, v in rows.items()))
    return images, tmp_path / "labels.csv", rows


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_custom_mode(tmp_path, toy_tree, fmt):
    root, ids = toy_tree
    images, labels, rows = _custom_tree(tmp_path, toy_tree, fmt)
    val_images, val_masks = tmp_path / "val", tmp_path / "valmasks"
    val_images.mkdir()
    val_masks.mkdir()
    for image_id in ids["voc_val"][:2]:
        shutil.copy(_voc(root, "JPEGImages", image_id + ".jpg"), val_images)
        shutil.copy(_voc(root, "SegmentationClass", image_id + ".png"), val_masks)
    (val_images / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")   # not images: passed over, as
    (val_images / "README.txt").write_text("val photos")      # in the train folder
    index = build_custom_index(str(images), str(labels), str(tmp_path / "classes.txt"),
                               str(val_images), str(val_masks), class_num=5)
    assert index["classes"] == ["background", "disc", "square", "triangle", "diamond"]
    names = index["classes"]
    assert {e["id"] + ".jpg": [names[c] for c in e["labels"]] for e in index["train"]} == {
        k: sorted(v, key=names.index) for k, v in rows.items()}
    assert [e["id"] for e in index["val"]] == sorted(ids["voc_val"][:2])
    assert all(os.path.isfile(e["mask"]) for e in index["val"])


def test_custom_mode_errors(tmp_path, toy_tree):
    images, labels, _ = _custom_tree(tmp_path, toy_tree, "csv")
    classes = str(tmp_path / "classes.txt")
    with pytest.raises(DatasetError, match="CLASS_NUM=21; set CLASS_NUM=5"):
        build_custom_index(str(images), str(labels), classes, class_num=21)
    (tmp_path / "bad.csv").write_text("x.jpg,unicorn\n")
    with pytest.raises(DatasetError, match="unknown class names.*unicorn"):
        build_custom_index(str(images), str(tmp_path / "bad.csv"), classes)
    (tmp_path / "empty.csv").write_text("%s,\n" % sorted(os.listdir(images))[0])
    with pytest.raises(DatasetError, match="empty.csv gives no image a class name"):
        build_custom_index(str(images), str(tmp_path / "empty.csv"), classes)


def _labels_error(tmp_path, toy_tree, name, content):
    images, _, _ = _custom_tree(tmp_path, toy_tree, "csv")
    path = tmp_path / name
    (path.write_bytes if isinstance(content, bytes) else path.write_text)(content)
    with pytest.raises(DatasetError) as err:
        build_custom_index(str(images), str(path), str(tmp_path / "classes.txt"))
    return str(err.value)


@pytest.mark.parametrize("name,content,pattern", [
    ("l.json", '{"a.jpg": "disc"}', "l.json: image a.jpg: expected a list of class names"),
    ("l.json", '{"a.jpg": 3}', "l.json: image a.jpg: expected a list"),
    ("l.json", '{"a.jpg": ["disc"]', "l.json is not valid JSON"),
    ("l.csv", b"a.jpg,disc\n\xff\xfe.jpg,square\n", "l.csv is not UTF-8 text"),
    ("l.csv", "a.jpg,disc\nb.jpg\n", "l.csv line 2: expected image,labels"),
    ("l.csv", "a.jpg,disc\na.jpg,square\n", "l.csv line 2: image a.jpg is listed twice"),
    ("l.csv", "cat.jpg,disc\ncat.png,square\n", "images cat.jpg and cat.png have the same id"),
])
def test_label_file_problems_name_the_file_and_line(tmp_path, toy_tree, name, content, pattern):
    """Every malformed label file is one clear error, never a traceback
    or a silent misreading (a JSON string split into characters, two images with one id)."""
    assert pattern in _labels_error(tmp_path, toy_tree, name, content)


def test_label_csv_with_a_byte_order_mark(tmp_path, toy_tree):
    images, labels, rows = _custom_tree(tmp_path, toy_tree, "csv")
    with open(labels, "rb") as f:
        data = f.read()
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + data)                 # a spreadsheet's "CSV UTF-8"
    index = build_custom_index(str(images), str(bom), str(tmp_path / "classes.txt"))
    assert len(index["train"]) == len(rows)


def test_empty_train_list_is_refused(toy_tree, tmp_path):
    def empty(root, ids):
        for path in (_sbd(root, "train.txt"), _sbd(root, "val.txt"),
                     _voc(root, "ImageSets", "Segmentation", "train.txt")):
            open(path, "w").close()
    cfg = _broken_copy(toy_tree, tmp_path, empty)
    with pytest.raises(DatasetError, match="train_aug is empty"):
        create_dataset(cfg)
