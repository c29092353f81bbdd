"""Tests for examples/image_datasets.py: offline loading and failure modes.

The references are built here from the raw sources (scikit-learn's arrays,
the IDX files decoded with `gzip` and `struct`), not from the module. Every
test runs with a temporary Keras home and with `keras.utils.get_file`
replaced, so none of them touches the real cache or reaches the network.
"""

import gzip
import hashlib
import os
import re
import shutil
import struct
import sys
import tracemalloc

import keras
import numpy as np
import pytest

from tests import example_modules

datasets = example_modules.load("image_datasets")

DEBIAN_FILES = [
    os.path.join("/usr/share/datasets/fashion-mnist", file_name)
    for file_name in datasets.FASHION_MNIST_FILES
]
needs_debian_fashion_mnist = pytest.mark.skipif(
    not all(os.path.isfile(path) for path in DEBIAN_FILES),
    reason="needs Debian's package dataset-fashion-mnist",
)


class Downloads:
    """Stands in for `keras.utils.get_file`; records every call.

    It refuses, as without a network, unless `serve` maps a file name to
    the bytes to "download".
    """

    def __init__(self):
        self.calls = []
        self.serve = {}

    def __call__(self, fname, origin, file_hash=None, cache_dir=None, **kw):
        self.calls.append(
            {"fname": fname, "origin": origin, "file_hash": file_hash}
        )
        self.calls[-1].update(cache_dir=cache_dir, **kw)
        if fname not in self.serve:
            raise Exception(f"URL fetch failure on {origin}: network disabled")
        folder = os.path.join(cache_dir, kw.get("cache_subdir", "datasets"))
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, fname)
        with open(path, "wb") as file:
            file.write(self.serve[fname])
        return path


@pytest.fixture(autouse=True)
def downloads(monkeypatch):
    fake = Downloads()
    monkeypatch.setattr(keras.utils, "get_file", fake)
    return fake


@pytest.fixture(autouse=True)
def keras_home(tmp_path, monkeypatch):
    """An empty Keras home for this test, as `$KERAS_HOME` gives."""
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    return home


@pytest.fixture
def no_system_files(tmp_path, monkeypatch):
    """No Debian package: its folder does not exist."""
    missing = tmp_path / "not_installed"
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIR", str(missing))
    return missing


def idx_bytes(array):
    """The IDX encoding of a uint8 array: header, then the raw bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">HBB", 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def read_idx(path):
    """Decodes a gzipped IDX file: big-endian header, then uint8 data."""
    with gzip.open(path, "rb") as file:
        content = file.read()
    _, data_type, num_dims = struct.unpack(">HBB", content[:4])
    assert data_type == 0x08, "expected unsigned bytes"
    shape = struct.unpack(f">{num_dims}I", content[4 : 4 + 4 * num_dims])
    data = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * num_dims)
    return data.reshape(shape)


def synthetic_arrays():
    """Fashion-MNIST-shaped arrays with a pattern, cheap to compress."""
    arrays = {}
    for file_name, shape in datasets.FASHION_MNIST_FILES.items():
        size = int(np.prod(shape))
        if len(shape) == 1:
            values = np.arange(size) % 10
        else:
            values = (np.arange(size) * 7 + size) % 256
        arrays[file_name] = values.astype(np.uint8).reshape(shape)
    return arrays


@pytest.fixture(scope="module")
def synthetic_fashion_dir(tmp_path_factory):
    """A folder with four valid synthetic Fashion-MNIST files."""
    folder = tmp_path_factory.mktemp("synthetic_fashion_mnist")
    for file_name, array in synthetic_arrays().items():
        with gzip.open(folder / file_name, "wb", compresslevel=1) as file:
            file.write(idx_bytes(array))
    return folder


def assert_synthetic(loaded):
    """Checks every label, and the images at 100 rows spread over each set."""
    arrays = list(synthetic_arrays().values())
    (x_train, y_train), (x_test, y_test) = loaded
    np.testing.assert_array_equal(y_train, arrays[0])
    np.testing.assert_array_equal(y_test, arrays[2])
    for x, raw in ((x_train, arrays[1]), (x_test, arrays[3])):
        assert x.shape == (len(raw), 784) and x.dtype == np.float32
        rows = np.linspace(0, len(raw) - 1, 100).astype(int)
        np.testing.assert_array_equal(
            x[rows], raw[rows].reshape(100, 784) / np.float32(255)
        )


def mnist_npz_bytes(tmp_path, compressed=True):
    """A valid `mnist.npz` whose bytes differ from Keras's file."""
    arrays = synthetic_arrays()
    path = tmp_path / "made.npz"
    save = np.savez_compressed if compressed else np.savez
    save(
        path,
        x_train=arrays["train-images-idx3-ubyte.gz"],
        y_train=arrays["train-labels-idx1-ubyte.gz"],
        x_test=arrays["t10k-images-idx3-ubyte.gz"],
        y_test=arrays["t10k-labels-idx1-ubyte.gz"],
    )
    return path.read_bytes()


def sklearn_digits():
    from sklearn import datasets as sklearn_datasets

    digits = sklearn_datasets.load_digits()
    return digits.data / 16.0, digits.target


def test_the_package_no_longer_ships_the_datasets():
    import keras_latent

    assert not hasattr(keras_latent, "datasets")
    source = open(datasets.__file__).read()
    assert "keras.src" not in source


"""
## Digits
"""


def test_digits_shapes_dtypes_and_ranges():
    (x_train, y_train), (x_test, y_test) = datasets.load_images(
        "digits", binarize=False
    )
    assert x_train.shape == (1500, 64) and x_test.shape == (297, 64)
    assert y_train.shape == (1500,) and y_test.shape == (297,)
    assert x_train.dtype == np.float32 and x_test.dtype == np.float32
    assert y_train.dtype == np.int64 and y_test.dtype == np.int64
    for x in (x_train, x_test):
        assert x.min() == 0.0 and x.max() == 1.0


def test_digits_split_is_a_partition_of_the_scikit_learn_images():
    (x_train, y_train), (x_test, y_test) = datasets.load_images(
        "digits", binarize=False
    )
    images, labels = sklearn_digits()
    loaded = np.concatenate(
        [
            np.concatenate([x_train, x_test]),
            np.concatenate([y_train, y_test])[:, None],
        ],
        axis=1,
    )
    expected = np.concatenate([images, labels[:, None]], axis=1)
    assert sorted(map(tuple, loaded.tolist())) == sorted(
        map(tuple, expected.tolist())
    )


def test_digits_split_depends_only_on_the_seed():
    (first, _), _ = datasets.load_images("digits", seed=3)
    (again, _), _ = datasets.load_images("digits", seed=3)
    (other, _), _ = datasets.load_images("digits", seed=4)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_binarize_thresholds_the_scaled_pixels_strictly_above_one_half():
    (raw, _), (raw_test, _) = datasets.load_images("digits", binarize=False)
    (binary, _), (binary_test, _) = datasets.load_images("digits")
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary, (raw > 0.5).astype("float32"))
    np.testing.assert_array_equal(
        binary_test, (raw_test > 0.5).astype("float32")
    )
    # Intensity 8 of 16 is exactly one half: it goes to 0.
    assert np.any(raw == 0.5)
    assert np.all(binary[raw == 0.5] == 0.0)


def test_digits_without_scikit_learn_raises_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(
        datasets.DatasetUnavailableError, match="pip install scikit-learn"
    ) as error:
        datasets.load_images("digits")
    assert error.value.__suppress_context__


def test_unknown_name_raises_value_error():
    expected = (
        "Invalid value received for argument `name`. Expected one of "
        "'digits', 'fashion_mnist', 'mnist'. Received: name='foo'"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        datasets.load_images("foo")


@pytest.mark.parametrize(
    "arguments, name",
    [({"binarize": 1}, "binarize"), ({"seed": -1}, "seed")],
)
def test_invalid_arguments_raise_value_error(arguments, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        datasets.load_images("digits", **arguments)


"""
## Fashion-MNIST
"""


def test_fashion_mnist_loads_from_the_system_folder_and_writes_nothing(
    synthetic_fashion_dir, keras_home, monkeypatch, downloads
):
    monkeypatch.setattr(
        datasets, "FASHION_MNIST_SYSTEM_DIR", str(synthetic_fashion_dir)
    )
    assert_synthetic(datasets.load_images("fashion_mnist", binarize=False))
    assert list(keras_home.iterdir()) == []
    assert downloads.calls == []


def test_fashion_mnist_prefers_keras_cache(
    synthetic_fashion_dir, keras_home, no_system_files, downloads
):
    shutil.copytree(
        synthetic_fashion_dir, keras_home / "datasets" / "fashion-mnist"
    )
    assert_synthetic(datasets.load_images("fashion_mnist", binarize=False))
    assert downloads.calls == []


def test_a_corrupt_cached_file_is_named_and_the_system_copy_is_used(
    synthetic_fashion_dir, keras_home, monkeypatch
):
    cache = keras_home / "datasets" / "fashion-mnist"
    shutil.copytree(synthetic_fashion_dir, cache)
    corrupt = cache / "t10k-images-idx3-ubyte.gz"
    corrupt.write_bytes(corrupt.read_bytes()[:1000])
    monkeypatch.setattr(
        datasets, "FASHION_MNIST_SYSTEM_DIR", str(synthetic_fashion_dir)
    )
    with pytest.warns(UserWarning, match=re.escape(str(corrupt))):
        loaded = datasets.load_images("fashion_mnist", binarize=False)
    assert_synthetic(loaded)
    # The user's file is left as it was.
    assert (
        corrupt.read_bytes()
        == ((synthetic_fashion_dir / corrupt.name).read_bytes()[:1000])
    )


@needs_debian_fashion_mnist
def test_a_corrupt_cached_file_does_not_hide_the_debian_package(keras_home):
    cache = keras_home / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for path in DEBIAN_FILES:
        shutil.copyfile(path, cache / os.path.basename(path))
    corrupt = cache / "train-labels-idx1-ubyte.gz"
    corrupt.write_bytes(b"not a gzip file")
    with pytest.warns(UserWarning, match=re.escape(str(corrupt))):
        (_, y_train), _ = datasets.load_images("fashion_mnist")
    np.testing.assert_array_equal(y_train, read_idx(DEBIAN_FILES[0]))
    assert corrupt.read_bytes() == b"not a gzip file"


@needs_debian_fashion_mnist
def test_fashion_mnist_from_debian_matches_the_raw_files(keras_home):
    (x_train, y_train), (x_test, y_test) = datasets.load_images(
        "fashion_mnist", binarize=False
    )
    raw_y_train, raw_x_train, raw_y_test, raw_x_test = (
        read_idx(path) for path in DEBIAN_FILES
    )
    np.testing.assert_array_equal(
        x_train, raw_x_train.reshape(60000, 784) / np.float32(255)
    )
    np.testing.assert_array_equal(y_test, raw_y_test)
    np.testing.assert_array_equal(y_train, raw_y_train)
    # 128 / 255 > 0.5 > 127 / 255.
    _, (binary_test, _) = datasets.load_images("fashion_mnist")
    np.testing.assert_array_equal(
        binary_test, (raw_x_test.reshape(10000, 784) >= 128).astype("f4")
    )


def test_missing_fashion_mnist_says_to_install_the_package(
    keras_home, no_system_files, downloads
):
    with pytest.raises(
        datasets.DatasetUnavailableError,
        match="apt-get install dataset-fashion-mnist",
    ) as error:
        datasets.load_images("fashion_mnist")
    assert error.value.__suppress_context__
    assert len(downloads.calls) == 1
    assert downloads.calls[0]["cache_dir"] == str(keras_home)


def test_a_damaged_package_is_not_installed_again_but_named(
    synthetic_fashion_dir, tmp_path, keras_home, monkeypatch
):
    system = tmp_path / "damaged_package"
    shutil.copytree(synthetic_fashion_dir, system)
    damaged = system / "train-images-idx3-ubyte.gz"
    damaged.write_bytes(b"\x1f\x8b garbage")
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIR", str(system))
    with pytest.warns(UserWarning, match=re.escape(str(damaged))):
        with pytest.raises(datasets.DatasetUnavailableError) as error:
            datasets.load_images("fashion_mnist")
    message = str(error.value)
    assert str(damaged) in message
    assert "apt-get install dataset-fashion-mnist" not in message
    assert "--reinstall dataset-fashion-mnist" in message


def write_gzip_bomb(path, header, payload, extra_bytes):
    """A gzip file: header and payload, then `extra_bytes` zeros.

    The zeros are one small compressed member repeated: gzip readers
    decompress concatenated members one after the other.
    """
    chunk = 16 * 2**20
    zeros = gzip.compress(bytes(chunk), compresslevel=9)
    with open(path, "wb") as file:
        file.write(gzip.compress(header + payload))
        for _ in range(extra_bytes // chunk):
            file.write(zeros)


@pytest.mark.parametrize("declared", ["true", "huge"])
def test_a_gzip_bomb_is_never_read_whole(keras_home, no_system_files, declared):
    cache = keras_home / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for file_name, shape in datasets.FASHION_MNIST_FILES.items():
        if declared == "huge":
            shape = (2**31,) + shape[1:]
        header = struct.pack(">HBB", 0, 0x08, len(shape))
        header += struct.pack(f">{len(shape)}I", *shape)
        write_gzip_bomb(cache / file_name, header, b"", 256 * 2**20)
    tracemalloc.start()
    try:
        with pytest.warns(UserWarning, match="Skipped an invalid"):
            with pytest.raises(datasets.DatasetUnavailableError) as error:
                datasets.load_images("fashion_mnist")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Each file decompresses to more than 256 MiB; a bounded reader holds
    # at most the 47 MB that the largest expected array takes, and the
    # buffers it is decompressed through.
    assert peak < 128 * 2**20
    assert str(cache / "train-labels-idx1-ubyte.gz") in str(error.value)


def test_a_file_with_data_beyond_its_declared_shape_is_refused(tmp_path):
    path = tmp_path / "labels.gz"
    with gzip.open(path, "wb") as file:
        file.write(idx_bytes(np.zeros(5, np.uint8)) + b"\x00")
    with pytest.raises(datasets.InvalidDataFileError, match=str(path)):
        datasets.read_idx_gz(path, (5,))
    exact = tmp_path / "exact.gz"
    labels = np.arange(5, dtype=np.uint8)
    with gzip.open(exact, "wb") as file:
        file.write(idx_bytes(labels))
    np.testing.assert_array_equal(datasets.read_idx_gz(exact, (5,)), labels)


"""
## MNIST
"""


def test_a_users_mnist_file_with_another_hash_is_read_not_deleted(
    tmp_path, keras_home, downloads
):
    content = mnist_npz_bytes(tmp_path)
    assert hashlib.sha256(content).hexdigest() != datasets.MNIST_SHA256
    cached = keras_home / "datasets" / "mnist.npz"
    cached.parent.mkdir()
    cached.write_bytes(content)
    loaded = datasets.load_images("mnist", binarize=False)
    assert_synthetic(loaded)
    assert cached.read_bytes() == content
    assert downloads.calls == []


def test_an_invalid_mnist_file_is_kept_and_named_offline(keras_home, downloads):
    cached = keras_home / "datasets" / "mnist.npz"
    cached.parent.mkdir()
    cached.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match=re.escape(str(cached))):
        with pytest.raises(
            datasets.DatasetUnavailableError, match="Connect to the network"
        ) as error:
            datasets.load_images("mnist")
    assert str(cached) in str(error.value)
    assert cached.read_bytes() == b"not a zip file"
    # The download was not pointed at the user's file.
    (call,) = downloads.calls
    assert call["cache_dir"] != str(keras_home)


def test_an_invalid_mnist_file_is_kept_when_a_download_replaces_it(
    tmp_path, keras_home, downloads
):
    cached = keras_home / "datasets" / "mnist.npz"
    cached.parent.mkdir()
    cached.write_bytes(b"PK\x03\x04 truncated")
    downloads.serve["mnist.npz"] = mnist_npz_bytes(tmp_path, compressed=False)
    with pytest.warns(UserWarning, match=re.escape(str(cached))):
        loaded = datasets.load_images("mnist", binarize=False)
    assert_synthetic(loaded)
    assert cached.read_bytes() == b"PK\x03\x04 truncated"
    assert os.listdir(cached.parent) == ["mnist.npz"]


def test_a_missing_mnist_file_is_downloaded_into_the_cache_with_its_hash(
    tmp_path, keras_home, downloads
):
    downloads.serve["mnist.npz"] = mnist_npz_bytes(tmp_path)
    assert_synthetic(datasets.load_images("mnist", binarize=False))
    (call,) = downloads.calls
    assert call["cache_dir"] == str(keras_home)
    assert call["file_hash"] == datasets.MNIST_SHA256
    assert (keras_home / "datasets" / "mnist.npz").is_file()


def test_missing_mnist_offline_raises_one_clear_error(keras_home, downloads):
    with pytest.raises(
        datasets.DatasetUnavailableError, match="Connect to the network"
    ) as error:
        datasets.load_images("mnist")
    assert str(keras_home / "datasets" / "mnist.npz") in str(error.value)
    assert error.value.__cause__ is None
    assert len(downloads.calls) == 1


def test_an_npz_array_of_the_wrong_shape_is_refused_before_its_data(
    tmp_path,
):
    path = tmp_path / "wrong.npz"
    np.savez(path, x_train=np.zeros((3, 2), np.uint8))
    with pytest.raises(datasets.InvalidDataFileError, match="shape"):
        datasets.read_npz(path, {"x_train": (60000, 28, 28)})
    with pytest.raises(datasets.InvalidDataFileError, match="no array"):
        datasets.read_npz(path, {"y_train": (60000,)})
