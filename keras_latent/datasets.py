"""Small image datasets for the examples and benchmarks, loaded offline.

Every dataset comes back the same way: images flattened to float32 vectors
in [0, 1] (binarized to {0, 1} by default) and integer labels, split into a
training and a test set.

| name              | source                         | train | test  | pixels |
|-------------------|--------------------------------|-------|-------|--------|
| `"digits"`        | scikit-learn's 8x8 digits      | 1500  | 297   | 64     |
| `"fashion_mnist"` | `keras.datasets.fashion_mnist` | 60000 | 10000 | 784    |
| `"mnist"`         | `keras.datasets.mnist`         | 60000 | 10000 | 784    |

`"digits"` ships inside scikit-learn and needs no files. `"fashion_mnist"`
and `"mnist"` go through Keras's loaders, which read Keras's cache
(`$KERAS_HOME/datasets/`, `~/.keras/datasets/` by default) and download only
what is missing there. Before calling the Fashion-MNIST loader, the files of
Debian's package `dataset-fashion-mnist` (`FASHION_MNIST_SYSTEM_DIR`) are
copied into Keras's cache when it lacks them, so that dataset loads without a
network wherever that package is installed. A dataset that cannot be had
raises `DatasetUnavailableError`, whose message says how to get it.
"""

import os
import shutil
import tempfile

import numpy as np
from keras import datasets as keras_datasets

# Keras has no public accessor for its home directory. This is the one its
# own `get_file` reads; it holds `$KERAS_HOME` as it was when Keras was
# imported, which is when Keras reads that variable.
from keras.src.backend import config as keras_backend_config

from keras_latent import validation

DATASET_NAMES = ("digits", "fashion_mnist", "mnist")

# Where Debian's package `dataset-fashion-mnist` installs the four gzipped
# IDX files, under the very names that Keras's loader expects.
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)

# The 1797 embedded digits are split once, by a seeded permutation, into
# this many training images and 297 test images.
NUM_DIGITS_TRAIN = 1500

BINARIZATION_THRESHOLD = 0.5


class DatasetUnavailableError(RuntimeError):
    """Raised when a dataset is neither on this machine nor downloadable.

    The message says what to install, or where to put which file.
    """


def load_images(name, binarize=True, seed=0):
    """Loads an image dataset as flat float32 vectors and integer labels.

    Pixel intensities are scaled to [0, 1]: the 8x8 digits (values 0 to 16)
    are divided by 16, the 28x28 MNIST-style images (0 to 255) by 255. Each
    image is flattened row by row. With `binarize=True` a pixel becomes 1.0
    where its scaled intensity is strictly greater than 0.5 and 0.0
    otherwise, a fixed threshold (the same as rounding to the nearer of 0
    and 1, ties going to 0) rather than a random draw, so every run sees the
    same data. A Bernoulli likelihood over binary pixels, as in the
    categorical VAE of Jang et al. (2017), then has a proper log-probability
    for every image.

    `"fashion_mnist"` and `"mnist"` keep the standard split of Keras's
    loaders. `"digits"` has no standard split: a permutation drawn with
    `numpy.random.default_rng(seed)` puts 1500 images into the training set
    and the remaining 297 into the test set, the same for the same seed.

    Args:
        name: one of `DATASET_NAMES`: `"digits"`, `"fashion_mnist"` or
            `"mnist"`.
        binarize: whether to threshold the pixels at 0.5 to {0, 1}.
        seed: a non-negative integer, the seed of the train/test split of
            `"digits"`. The other datasets ignore it.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: `x_*` float32 NumPy arrays
        of shape `(num_images, num_pixels)` with values in [0, 1] (in {0, 1}
        when `binarize=True`), `y_*` int64 NumPy arrays of shape
        `(num_images,)` with the class labels 0 to 9.

    Raises:
        ValueError: for an unknown `name` or an invalid argument.
        DatasetUnavailableError: when the dataset cannot be loaded: its
            files are missing and cannot be downloaded, or, for `"digits"`,
            scikit-learn is not installed.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_images("digits")
    >>> x_train.shape, x_test.shape
    ((1500, 64), (297, 64))
    >>> sorted(set(x_train.ravel().tolist()))
    [0.0, 1.0]
    """
    validation.check_choice("name", name, DATASET_NAMES)
    binarize = validation.check_bool("binarize", binarize)
    seed = validation.check_integer("seed", seed, minimum=0)
    if name == "digits":
        (x_train, y_train), (x_test, y_test) = _load_digits(seed)
    elif name == "fashion_mnist":
        (x_train, y_train), (x_test, y_test) = _load_fashion_mnist()
    else:
        (x_train, y_train), (x_test, y_test) = _load_mnist()
    if binarize:
        x_train = _binarize(x_train)
        x_test = _binarize(x_test)
    return (x_train, y_train), (x_test, y_test)


def _binarize(x):
    return (x > BINARIZATION_THRESHOLD).astype("float32")


def _flat_images(images, max_value):
    images = np.asarray(images)
    flat = images.reshape(images.shape[0], -1).astype("float32")
    return flat / np.float32(max_value)


def _labels(labels):
    return np.asarray(labels).astype("int64")


def _load_digits(seed):
    try:
        from sklearn import datasets as sklearn_datasets
    except ImportError:
        raise DatasetUnavailableError(
            "The 'digits' dataset needs scikit-learn, which is not "
            "installed. Install it with `pip install scikit-learn` (or "
            "`pip install keras-latent[examples]`)."
        ) from None
    digits = sklearn_datasets.load_digits()
    order = np.random.default_rng(seed).permutation(len(digits.target))
    images = _flat_images(digits.images[order], max_value=16.0)
    labels = _labels(digits.target[order])
    train, test = slice(None, NUM_DIGITS_TRAIN), slice(NUM_DIGITS_TRAIN, None)
    return (images[train], labels[train]), (images[test], labels[test])


def _keras_datasets_dir():
    """The `datasets` folder in which Keras's loaders cache their files.

    The same rule as `keras.utils.get_file`: Keras's home, or `/tmp/.keras`
    where that home is not writable.
    """
    home = os.path.expanduser(keras_backend_config.keras_home())
    if not os.access(home, os.W_OK):
        temp_root = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
        home = os.path.join(temp_root, ".keras")
    return os.path.join(home, "datasets")


def _copy_system_fashion_mnist(cache_dir):
    """Copies the Debian files that Keras's cache lacks into that cache."""
    for file_name in FASHION_MNIST_FILES:
        source = os.path.join(FASHION_MNIST_SYSTEM_DIR, file_name)
        target = os.path.join(cache_dir, file_name)
        if os.path.exists(target) or not os.path.isfile(source):
            continue
        os.makedirs(cache_dir, exist_ok=True)
        # Keras checks no hash for these files: a copy cut short would be
        # taken for the real file, so each appears under its name whole.
        partial = target + ".partial"
        shutil.copyfile(source, partial)
        os.replace(partial, target)


def _load_fashion_mnist():
    cache_dir = os.path.join(_keras_datasets_dir(), "fashion-mnist")
    _copy_system_fashion_mnist(cache_dir)
    try:
        (x_train, y_train), (x_test, y_test) = (
            keras_datasets.fashion_mnist.load_data()
        )
    except Exception as error:
        raise DatasetUnavailableError(
            "The 'fashion_mnist' dataset could not be loaded from Keras's "
            f"cache ({cache_dir}) or from {FASHION_MNIST_SYSTEM_DIR}, and "
            "Keras could not download it. Install Debian's package with "
            "`apt-get install dataset-fashion-mnist`, or connect to the "
            "network once so that Keras can cache it. "
            f"(Keras reported: {error})"
        ) from None
    return (
        (_flat_images(x_train, 255.0), _labels(y_train)),
        (_flat_images(x_test, 255.0), _labels(y_test)),
    )


def _load_mnist():
    cache_path = os.path.join(_keras_datasets_dir(), "mnist.npz")
    try:
        (x_train, y_train), (x_test, y_test) = keras_datasets.mnist.load_data()
    except Exception as error:
        raise DatasetUnavailableError(
            f"The 'mnist' dataset is not in Keras's cache ({cache_path}) "
            "and Keras could not download it. Connect to the network once "
            "so that `keras.datasets.mnist.load_data()` can cache it, or "
            "copy Keras's `mnist.npz` to that path. "
            f"(Keras reported: {error})"
        ) from None
    return (
        (_flat_images(x_train, 255.0), _labels(y_train)),
        (_flat_images(x_test, 255.0), _labels(y_test)),
    )
