"""Tests for keras_latent.datasets: offline loading and its failure modes.

The references are built here from the raw sources (scikit-learn's arrays,
the IDX files decoded with `gzip` and `struct`), not from the module.
Every test runs with Keras's download replaced by a failure, so none of them
reaches the network.
"""

import gzip
import os
import re
import struct
import subprocess
import sys
import textwrap
import urllib.error

import numpy as np
import pytest
from keras.src.backend import config as keras_config
from keras.src.utils import file_utils as keras_file_utils

from keras_latent import datasets

DEBIAN_FILES = [
    os.path.join(datasets.FASHION_MNIST_SYSTEM_DIR, file_name)
    for file_name in datasets.FASHION_MNIST_FILES
]
needs_debian_fashion_mnist = pytest.mark.skipif(
    not all(os.path.isfile(path) for path in DEBIAN_FILES),
    reason="needs Debian's package dataset-fashion-mnist",
)


@pytest.fixture(autouse=True)
def download_attempts(monkeypatch):
    """Makes Keras's download fail; yields the list of URLs it was asked."""
    attempts = []

    def refuse(url, *args, **kwargs):
        attempts.append(url)
        raise urllib.error.URLError("network disabled in tests")

    monkeypatch.setattr(keras_file_utils, "urlretrieve", refuse)
    return attempts


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """An empty Keras home for this test, as `$KERAS_HOME` would give.

    Keras reads `KERAS_HOME` once, when it is imported, so besides the
    variable the value Keras took from it is replaced too.
    """
    home = tmp_path / "keras_home"
    home.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(home))
    return home


def read_idx(path):
    """Decodes a gzipped IDX file: big-endian header, then uint8 data."""
    with gzip.open(path, "rb") as file:
        content = file.read()
    _, data_type, num_dims = struct.unpack(">HBB", content[:4])
    assert data_type == 0x08, "expected unsigned bytes"
    shape = struct.unpack(f">{num_dims}I", content[4 : 4 + 4 * num_dims])
    data = np.frombuffer(content, dtype=np.uint8, offset=4 + 4 * num_dims)
    return data.reshape(shape)


def sklearn_digits():
    from sklearn import datasets as sklearn_datasets

    digits = sklearn_datasets.load_digits()
    return digits.data / 16.0, digits.target


def test_dataset_names_lists_every_dataset():
    assert datasets.DATASET_NAMES == ("digits", "fashion_mnist", "mnist")


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
    for y in (y_train, y_test):
        assert set(np.unique(y)) <= set(range(10))


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
    assert binary.dtype == np.float32
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(binary, (raw > 0.5).astype("float32"))
    np.testing.assert_array_equal(
        binary_test, (raw_test > 0.5).astype("float32")
    )
    # Intensity 8 of 16 is exactly one half: it goes to 0.
    assert np.any(raw == 0.5)
    assert np.all(binary[raw == 0.5] == 0.0)


@needs_debian_fashion_mnist
def test_fashion_mnist_loads_offline_from_the_debian_files(
    keras_home, download_attempts
):
    (x_train, y_train), (x_test, y_test) = datasets.load_images(
        "fashion_mnist", binarize=False
    )
    raw = [read_idx(path) for path in DEBIAN_FILES]
    raw_y_train, raw_x_train, raw_y_test, raw_x_test = raw
    assert x_train.shape == (60000, 784) and x_test.shape == (10000, 784)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(
        x_train, raw_x_train.reshape(60000, 784) / np.float32(255)
    )
    np.testing.assert_array_equal(
        x_test, raw_x_test.reshape(10000, 784) / np.float32(255)
    )
    np.testing.assert_array_equal(y_train, raw_y_train)
    np.testing.assert_array_equal(y_test, raw_y_test)
    cached = sorted(os.listdir(keras_home / "datasets" / "fashion-mnist"))
    assert cached == sorted(datasets.FASHION_MNIST_FILES)
    assert download_attempts == []


@needs_debian_fashion_mnist
def test_fashion_mnist_binarized_is_pixels_of_128_and_above(keras_home):
    _, (x_test, _) = datasets.load_images("fashion_mnist")
    raw_x_test = read_idx(DEBIAN_FILES[3]).reshape(10000, 784)
    # 128 / 255 > 0.5 > 127 / 255.
    np.testing.assert_array_equal(x_test, (raw_x_test >= 128).astype("f4"))


@pytest.mark.slow
@needs_debian_fashion_mnist
def test_fashion_mnist_goes_to_the_keras_home_of_a_fresh_process(tmp_path):
    home = tmp_path / "keras_home"
    home.mkdir()
    script = textwrap.dedent(
        """
        def refuse(*args, **kwargs):
            raise OSError("network disabled in tests")

        from keras.src.utils import file_utils

        file_utils.urlretrieve = refuse
        from keras_latent import datasets
        (x_train, _), _ = datasets.load_images("fashion_mnist")
        print(x_train.shape)
        """
    )
    repository_root = os.path.dirname(os.path.dirname(__file__))
    environment = dict(os.environ, KERAS_HOME=str(home))
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=repository_root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("(60000, 784)")
    cached = sorted(os.listdir(home / "datasets" / "fashion-mnist"))
    assert cached == sorted(datasets.FASHION_MNIST_FILES)


def test_missing_fashion_mnist_raises_one_clear_error(
    keras_home, tmp_path, monkeypatch, download_attempts
):
    empty = tmp_path / "no_debian_package"
    empty.mkdir()
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIR", str(empty))
    with pytest.raises(
        datasets.DatasetUnavailableError,
        match="apt-get install dataset-fashion-mnist",
    ) as error:
        datasets.load_images("fashion_mnist")
    assert isinstance(error.value, RuntimeError)
    assert error.value.__cause__ is None
    assert error.value.__suppress_context__
    assert len(download_attempts) == 1
    cache = keras_home / "datasets" / "fashion-mnist"
    assert not cache.exists() or os.listdir(cache) == []


def test_missing_mnist_raises_one_clear_error(keras_home, download_attempts):
    with pytest.raises(
        datasets.DatasetUnavailableError, match="Connect to the network"
    ) as error:
        datasets.load_images("mnist")
    assert str(keras_home / "datasets" / "mnist.npz") in str(error.value)
    assert error.value.__cause__ is None
    assert error.value.__suppress_context__
    assert len(download_attempts) == 1


def test_digits_without_scikit_learn_raises_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(
        datasets.DatasetUnavailableError, match="pip install scikit-learn"
    ) as error:
        datasets.load_images("digits")
    assert error.value.__cause__ is None
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
