"""Dataset, collate and loader: seeded, aligned, mapped back, multi-scale, bad images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from tests.yolo.data.fixtures import make_voc
from yolo.data.dataset import DetectionDataset
from yolo.data.loader import MultiScaleBatchSampler, collate, create_dataloader, load_records
from yolo.data.records import DataError, DataWarning
from yolo.data.transforms import AugmentConfig

BOXES = {  # VOC 1-based boxes of one white rectangle per image
    "a": (120, 90, (11, 21, 60, 70)),
    "b": (90, 120, (31, 11, 80, 50)),
    "c": (100, 100, (21, 31, 70, 90)),
    "d": (140, 70, (51, 11, 120, 60)),
}


@pytest.fixture
def spec(tmp_path):
    images = {k: (w, h, [{"name": "cat", "box": box}]) for k, (w, h, box) in BOXES.items()}
    path = make_voc(tmp_path, images)
    for image_id, (w, h, (x1, y1, x2, y2)) in BOXES.items():
        pixels = np.full((h, w, 3), 60, dtype=np.uint8)
        pixels[y1 - 1 : y2, x1 - 1 : x2] = 255
        Image.fromarray(pixels).save(tmp_path / "VOC2007" / "JPEGImages" / f"{image_id}.jpg",
                                     quality=100)  # fmt: skip
    return path


def _dataset(spec, **kwargs) -> DetectionDataset:
    records, names, _ = load_records(spec, "train")
    return DetectionDataset(records, names, **kwargs)


def _ink_box(image: np.ndarray) -> np.ndarray:
    ys, xs = np.nonzero(image.min(-1) > 200)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)


def test_plain_samples_letterbox_and_map_back_exactly(spec) -> None:
    dataset = _dataset(spec, img_size=64)
    for i, record in enumerate(dataset.records):
        sample = dataset[i]
        assert sample.image.shape == (64, 64, 3)
        np.testing.assert_allclose(sample.letterbox.to_original(sample.boxes), record.boxes,
                                   atol=1e-9)  # fmt: skip
        np.testing.assert_allclose(_ink_box(sample.image), sample.boxes[0], atol=1.0)


@pytest.mark.parametrize("epoch", [0, 1, 2])
def test_augmented_boxes_stay_on_the_content(spec, epoch: int) -> None:
    cfg = AugmentConfig(degrees=10, translate=0.1, scale=0.2, shear=3, hsv_h=0, hsv_s=0, hsv_v=0)
    dataset = _dataset(spec, img_size=96, augment=cfg, seed=3)
    dataset.set_epoch(epoch)
    for i in range(len(dataset)):
        sample = dataset[i]
        assert len(sample.boxes) == 1
        np.testing.assert_allclose(_ink_box(sample.image), sample.boxes[0], atol=1.5)


def test_mosaic_boxes_cover_white_content(spec) -> None:
    cfg = AugmentConfig(mosaic=1.0, degrees=0, shear=0, hsv_h=0, hsv_s=0, hsv_v=0, flip_lr=0.5)
    dataset = _dataset(spec, img_size=96, augment=cfg)
    seen = 0
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            sample = dataset[i]
            for x1, y1, x2, y2 in sample.boxes:
                patch = sample.image[int(np.ceil(y1)) : int(y2), int(np.ceil(x1)) : int(x2)]
                assert patch.size and patch.min(-1).mean() > 200
                seen += 1
            assert len(sample.labels) == len(sample.boxes) == len(sample.difficult)
    assert seen > 12


def test_samples_are_deterministic_per_seed_and_epoch(spec) -> None:
    cfg = AugmentConfig(mosaic=0.5)
    first = _dataset(spec, img_size=64, augment=cfg, seed=1)
    second = _dataset(spec, img_size=64, augment=cfg, seed=1)
    assert np.array_equal(first[2].image, second[2].image)
    second.set_epoch(1)
    assert not np.array_equal(first[2].image, second[2].image)


def test_loader_batches_are_the_same_with_and_without_workers(spec) -> None:
    kwargs = dict(img_size=64, batch_size=2, augment=AugmentConfig(), shuffle=True, seed=5)
    plain = list(create_dataloader(spec, "train", workers=0, **kwargs))
    workers = list(create_dataloader(spec, "train", workers=2, **kwargs))
    for a, b in zip(plain, workers):
        assert torch.equal(a.images, b.images) and torch.equal(a.targets, b.targets)
        assert a.image_ids == b.image_ids


def test_collate_layout(spec) -> None:
    dataset = _dataset(spec, img_size=64)
    batch = collate([dataset[0], dataset[1]])
    assert batch.images.shape == (2, 3, 64, 64) and batch.images.dtype == torch.float32
    assert 0 <= batch.images.min() and batch.images.max() <= 1
    assert batch.targets.shape == (2, 6) and batch.targets[:, 0].tolist() == [0, 1]
    box = dataset[0].boxes[0] / 64
    expected = [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2, box[2] - box[0], box[3] - box[1]]
    np.testing.assert_allclose(batch.targets[0, 2:].numpy(), expected, rtol=1e-6)
    assert batch.image_ids == ["VOC2007/a", "VOC2007/b"]
    assert batch.original_sizes == [(120, 90), (90, 120)]


def test_multi_scale_batches(spec) -> None:
    loader = create_dataloader(spec, "train", img_size=64, batch_size=2, multi_scale=(64, 128),
                               shuffle=True)  # fmt: skip
    sizes = set()
    for epoch in range(4):
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            size = batch.images.shape[-1]
            assert size % 32 == 0 and 64 <= size <= 128 and batch.images.shape[-2] == size
            sizes.add(size)
    assert len(sizes) > 1
    with pytest.raises(ValueError, match="multiples of 32"):
        MultiScaleBatchSampler(4, 2, (60, 128))


def test_cache_gives_the_same_samples(spec) -> None:
    cached = _dataset(spec, img_size=64, cache=True)
    plain = _dataset(spec, img_size=64)
    assert all(np.array_equal(cached[i].image, plain[i].image) for i in range(len(plain)))


def test_corrupt_image_skip_or_error(spec, tmp_path) -> None:
    dataset = _dataset(spec, img_size=64)
    # corrupted after the records were read (their headers were fine): found at decoding
    (tmp_path / "VOC2007" / "JPEGImages" / "b.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.warns(DataWarning, match=r"b\.jpg: corrupt or unreadable image.*skipped"):
        sample = dataset[1]
    assert sample.image_id == "VOC2007/c"
    strict = DetectionDataset(dataset.records, dataset.names, img_size=64, on_bad_sample="error")
    with pytest.raises(DataError, match=r"b\.jpg: corrupt or unreadable image"):
        strict[1]
    # read afresh, the listing finds the bad header and skips the image under its policy
    with pytest.warns(DataWarning, match=r"1 × unreadable image .*b\.jpg"):
        assert [r.image_id for r in _dataset(spec, img_size=64).records] == [
            "VOC2007/a", "VOC2007/c", "VOC2007/d"]  # fmt: skip


def test_bad_arguments(spec) -> None:
    with pytest.raises(ValueError, match="img_size must be a positive multiple of 32, got 50"):
        _dataset(spec, img_size=50)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        create_dataloader(spec, "train", img_size=64, batch_size=0)
