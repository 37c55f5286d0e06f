"""Iterators and transforms: shapes, dtypes, mean and channel order, labels, cues, mirroring,
deterministic order, clean worker shutdown."""
import os

import numpy as np
import pytest
import scipy.ndimage as ndi
from PIL import Image

from cores import stages
from cores.data import transforms
from cores.data.dataset import DatasetError
from cores.data.iterators import (inference_stream, multilabel_iter, sample_order,
                                  segmentation_iter)


def _solid_image(tmp_path, rgb=(200, 100, 50), size=(40, 30)):
    path = str(tmp_path / "solid.jpg")
    Image.new("RGB", size, rgb).save(path, quality=100)
    return {"id": "solid", "image": path, "labels": [2, 4], "mask": None}


@pytest.mark.parametrize("order", ["BGR", "RGB"])
def test_mean_and_channel_order(tmp_path, order):
    entry = _solid_image(tmp_path)
    mean = [10.0, 20.0, 30.0]
    data, label = transforms.load_multilabel((entry, 17, mean, order, 4, False))
    assert data.shape == (3, 17, 17) and data.dtype == np.float32
    rgb = np.array([200, 100, 50], np.float32)
    want = (rgb[::-1] if order == "BGR" else rgb) - mean
    np.testing.assert_allclose(data.mean(axis=(1, 2)), want, atol=2.0)   # JPEG rounding
    assert label.tolist() == [0, 1, 0, 1]


def test_sec_sample_crf_image_labels_and_cues(tmp_path):
    entry = _solid_image(tmp_path)
    sparse = np.array([[0, 2, 2], [1, 3, 4], [0, 0, 4]])          # class, y, x
    data, small, labels, cues = transforms.load_sec(
        (entry, 33, 5, [0, 0, 0], "RGB", 5, sparse, False))
    assert data.shape == (3, 33, 33) and small.shape == (5, 5, 3) and small.dtype == np.uint8
    np.testing.assert_allclose(small.reshape(-1, 3).mean(0), [50, 100, 200], atol=2)  # BGR
    assert labels.tolist() == [1, 0, 1, 0, 1]                       # background always on
    assert cues.shape == (5, 5, 5) and cues.sum() == 3
    assert cues[0, 1, 0] == cues[2, 3, 0] == cues[2, 4, 4] == 1


def test_crf_image_is_the_zoomed_network_input():
    resized = np.random.RandomState(0).rand(33, 33, 3).astype(np.float32) * 255
    small = transforms.crf_image(resized, 5)
    want = np.round(ndi.zoom(resized, (5 / 33, 5 / 33, 1), order=1))[:, :, ::-1]
    np.testing.assert_array_equal(small, np.clip(want, 0, 255).astype(np.uint8))


def test_mirroring_flips_image_crf_image_and_cues_together(toy_index):
    cfg, index = toy_index
    entry = index["train"][0]
    sparse = np.array([[entry["labels"][0], 0], [1, 2], [0, 3]])
    plain = transforms.load_sec((entry, 41, 6, cfg.PIXEL_MEAN, "BGR", 5, sparse, False))
    flipped = transforms.load_sec((entry, 41, 6, cfg.PIXEL_MEAN, "BGR", 5, sparse, True))
    np.testing.assert_allclose(flipped[0], plain[0][:, :, ::-1])
    np.testing.assert_array_equal(flipped[1], transforms.crf_image(
        transforms.resize_rgb(transforms.load_rgb(entry["image"]), 41)[:, ::-1], 6))
    np.testing.assert_array_equal(flipped[3], plain[3][:, :, ::-1])
    np.testing.assert_array_equal(flipped[2], plain[2])


def test_non_rgb_images_are_converted_and_broken_ones_named(tmp_path):
    gray = str(tmp_path / "g.jpg")
    Image.new("L", (8, 6), color=77).save(gray)
    assert transforms.load_rgb(gray).shape == (6, 8, 3)
    assert (transforms.load_rgb(gray) == 77).all()
    palette = str(tmp_path / "p.png")
    Image.new("P", (5, 4)).save(palette)
    assert transforms.load_rgb(palette).shape == (4, 5, 3)
    broken = str(tmp_path / "b.jpg")
    with open(broken, "wb") as f:
        f.write(b"not an image")
    with pytest.raises(DatasetError, match="b.jpg"):
        transforms.load_rgb(broken)


def test_sample_order_is_a_stream_of_permutations():
    order = sample_order(10, seed=3, start=0, count=25)
    assert sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))
    assert sample_order(10, 3, 7, 9) == order[7:16]                 # resume mid-stream


def test_multilabel_iter_batches_and_epochs(toy_index):
    cfg, index = toy_index
    it = multilabel_iter(cfg, index["train"], batch_size=4, epoch_size=3)
    try:
        batches = list(it)
        assert len(batches) == 3
        assert batches[0].data[0].shape == (4, 3, 81, 81)
        assert batches[0].label[0].shape == (4, 4)
        by_id = {e["id"]: e for e in index["train"]}
        labels = batches[-1].label[0].asnumpy()
        for row, image_id in zip(labels, it.last_ids):
            assert sorted(np.flatnonzero(row) + 1) == by_id[image_id]["labels"]
        it.reset()
        assert len(list(it)) == 3 and it.next_batch == 6
    finally:
        it.close()


def test_segmentation_iter_resumes_with_the_same_batches(toy_index):
    cfg, index = toy_index
    cues = {e["id"]: np.array([[e["labels"][0]], [1], [1]]) for e in index["train"]}
    from cores import methods
    sec = methods.get("sec")
    schedule = stages.Schedule(type(cfg)(cfg, BATCH_SIZE=4), sec)
    shapes = sec.input_shapes(cfg, 4, 11)
    a = segmentation_iter(cfg, index["train"], cues, 11, schedule, sec.task(cfg), shapes)
    b = segmentation_iter(cfg, index["train"], cues, 11, schedule, sec.task(cfg), shapes,
                          start_batch=2)
    try:
        first = [a.next() for _ in range(3)]
        resumed = b.next()
        for x, y in zip(first[2].data + first[2].label, resumed.data + resumed.label):
            np.testing.assert_array_equal(x.asnumpy(), y.asnumpy())
        assert [d.shape for d in resumed.data] == [(4, 3, 81, 81), (4, 11, 11, 3)]
        assert [d.shape for d in resumed.label] == [(4, 5), (4, 5, 11, 11)]
    finally:
        a.close()
        b.close()


def test_worker_processes_end_with_the_iterator(toy_index):
    cfg, index = toy_index
    cfg = type(cfg)(cfg, DATA_WORKERS=2)
    it = multilabel_iter(cfg, index["train"], batch_size=2, epoch_size=2)
    it.next()
    procs = list(it.loader.pool._processes.values())
    assert len(procs) == 2 and all(p.is_alive() for p in procs)
    it.close()
    for p in procs:
        p.join(timeout=10)
    assert not any(p.is_alive() for p in procs)


def test_inference_stream_in_order_with_masks(toy_index):
    cfg, index = toy_index
    cfg = type(cfg)(cfg, DATA_WORKERS=2)
    got = list(inference_stream(cfg, index["val"]))
    assert [g[0]["id"] for g in got] == [e["id"] for e in index["val"]]
    for entry, data, rgb, mask in got:
        assert data.shape == (3, 81, 81) and rgb.dtype == np.uint8
        assert mask.shape == rgb.shape[:2]
        assert os.path.isfile(entry["mask"])
