"""What a new user meets in a first pass on real photographs (scikit-image's bundled sample
images), every stage a script in its own process at tiny iteration counts: each problem is one
line naming the file and what to do, nothing is half written, and nothing earlier is lost."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO

skimage_data = pytest.importorskip("skimage.data")

# (photo, class names): photographs whose content gives the labels
PHOTOS = [("chelsea", ["cat"]), ("coffee", ["cup"]), ("astronaut", ["person"]),
          ("rocket", ["rocket"]), ("immunohistochemistry", []), ("hubble_deep_field", [])]
TINY = ["INPUT_SIZE=81", "WIDTH_MULT=0.125", "CLASS_NUM=5", "MIN_CLASSIFIER_MAP=0",
        "DATA_WORKERS=1", "CRF_WORKERS=1", "Q_FG=0.945", "Q_BG=0.986"]
for stage in ("PRE", "BG", "FG", ""):
    key = "_" + stage if stage else ""
    TINY += ["BATCH_SIZE%s=2" % key, "MAX_ITER%s=2" % key, "EPOCH_SIZE%s=1" % key,
             "LR_STEP%s=10" % key]


def _script(args, work, expect=0):
    done = subprocess.run([sys.executable, os.path.join(REPO, args[0])] + args[1:] +
                          ["--set", "WORK_PATH=" + str(work)] + TINY, cwd=str(work),
                          capture_output=True, text=True)
    text = done.stdout + done.stderr
    assert done.returncode == expect, "%s: rc %d\n%s" % (args, done.returncode, text[-3000:])
    assert "Traceback" not in text, text[-3000:]
    return text


def _errors(text):
    return [line for line in text.splitlines() if " error: " in line]


def _photos(folder, size=120):
    """Each photo as a JPEG (long side ``size``) and mirrored: two training images a photo."""
    folder.mkdir()
    rows = []
    for name, labels in PHOTOS:
        picture = Image.fromarray(getattr(skimage_data, name)()).convert("RGB")
        picture.thumbnail((size, size))
        for suffix, image in (("", picture), ("_m", picture.transpose(Image.FLIP_LEFT_RIGHT))):
            image.save(folder / ("%s%s.jpg" % (name, suffix)), quality=90)
            rows.append("%s%s.jpg,%s" % (name, suffix, ";".join(labels)))
    return rows


def _odd_files(folder):
    """The files a user's folder holds: alpha, grayscale, CMYK, 16-bit, a 4000x3000 photo, a
    zero-byte file and a text file named .jpg."""
    folder.mkdir()
    photo = Image.fromarray(skimage_data.coffee())
    photo.convert("RGBA").save(folder / "alpha.png")
    photo.convert("L").save(folder / "gray.jpg")
    photo.convert("CMYK").save(folder / "cmyk.jpg")
    deep = (np.asarray(photo.convert("L"), np.uint16) * 257)
    Image.fromarray(deep.astype(np.uint16)).save(folder / "deep.png")
    assert Image.open(folder / "deep.png").mode.startswith("I")
    photo.resize((4000, 3000)).save(folder / "huge.jpg", quality=80)
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("not a picture")


@pytest.mark.slow
def test_a_first_pass_on_real_photographs(tmp_path):
    rows = _photos(tmp_path / "photos")
    (tmp_path / "classes.txt").write_text("cat\ncup\nperson\nrocket\n")
    (tmp_path / "labels.csv").write_text("image,labels\n" + "\n".join(rows) + "\n")
    work = tmp_path / "work"
    work.mkdir()
    create = ["create_dataset.py", "--images", str(tmp_path / "photos"), "--classes",
              str(tmp_path / "classes.txt"), "--labels"]

    # a label that is not a class, a labels file without rows: one line each, no index written
    (tmp_path / "bad.csv").write_text("image,labels\n" + rows[0].replace("cat", "dog") + "\n" +
                                      "\n".join(rows[1:]) + "\n")
    text = _script(create + [str(tmp_path / "bad.csv")], work, expect=1)
    assert "bad.csv: image chelsea.jpg has unknown class names ['dog']" in text
    (tmp_path / "empty.csv").write_text("image,labels\n")
    text = _script(create + [str(tmp_path / "empty.csv")], work, expect=1)
    assert "empty.csv" in text and "lists no images" in text
    assert not os.path.exists(work / "dataset")
    _script(create + [str(tmp_path / "labels.csv")], work)

    # eval without val masks, and before training: what to do, and no empty output folder
    text = _script(["eval.py"], work, expect=1)
    assert "has no images with masks" in text and "eval.py --images DIR" in text
    text = _script(["eval.py", "--images", str(tmp_path / "photos")], work, expect=1)
    assert "run train_SEC.py first" in text and not os.path.exists(work / "outputs")

    _script(["demo/pretrain_backbone.py"], work)
    _script(["train_bg_cues.py"], work)
    _script(["train_fg_cues.py"], work)
    before = sorted(os.listdir(work / "snapshots"))
    # the same stage again into the same folder: refused, naming the folder and the ways on
    text = _script(["train_fg_cues.py"], work, expect=1)
    assert len(_errors(text)) == 1 and "already holds snapshots cam_vgg16-NNNN.params of " \
        "epochs 1-2" in text and "--resume" in text and "--overwrite" in text
    assert sorted(os.listdir(work / "snapshots")) == before          # nothing touched
    _script(["train_fg_cues.py", "--resume"], work)                   # finished: cues again
    _script(["train_SEC.py"], work)

    _odd_files(tmp_path / "mine")
    text = _script(["eval.py", "--crf", "--images", str(tmp_path / "mine")], work)
    out = work / "outputs" / "sec_vgg16-0002_crf" / "images"
    assert sorted(os.listdir(out / "masks")) == ["alpha.png", "cmyk.png", "deep.png",
                                                 "gray.png", "huge.png"]
    assert "2 of 7 images could not be read" in text and "empty.jpg" in text and \
        "notes.jpg" in text
    assert "4 of 7 images are not 8-bit RGB and were converted (16-bit 1, CMYK 1, RGBA 1, " \
        "grayscale 1)" in text
    assert "huge.jpg is 4000x3000: its CRF runs on a copy" in text
    assert Image.open(out / "masks" / "huge.png").size == (4000, 3000)
    assert os.path.isfile(out / "legend.png")
    leftovers = [f for _, _, files in os.walk(work) for f in files if ".tmp" in f]
    assert leftovers == []
