"""Small image datasets for the examples and benchmarks, loaded offline.

This module is plumbing for the scripts in `examples/` and `benchmarks/`,
not part of the keras-latent package. Every dataset comes back the same
way: images flattened to float32 vectors in [0, 1] (binarized to {0, 1} by
default) and integer labels, split into a training and a test set.

| name              | source                          | train | test  | pixels |
|-------------------|---------------------------------|-------|-------|--------|
| `"digits"`        | scikit-learn's 8x8 digits       | 1500  | 297   | 64     |
| `"fashion_mnist"` | Keras's cache, Debian, download | 60000 | 10000 | 784    |
| `"mnist"`         | Keras's cache, download         | 60000 | 10000 | 784    |

`"digits"` ships inside scikit-learn and needs no files.

`"fashion_mnist"` is read from the first of these that holds it whole:
Keras's cache (`$KERAS_HOME/datasets/fashion-mnist/`, `~/.keras/...` by
default), the files of Debian's package `dataset-fashion-mnist`
(`FASHION_MNIST_SYSTEM_DIR`), then a download through
`keras.utils.get_file`. `"mnist"` is read from Keras's cache
(`$KERAS_HOME/datasets/mnist.npz`), then downloaded.

Files are read here, not by Keras's loaders, for three reasons. Keras's
`get_file` deletes a cached file whose hash differs from the one it expects
when the download that replaces it fails, so it never sees a file it did not
download itself; a user's file is never deleted or overwritten. A file
that is not what it should be is named in a warning and the next source is
tried. And each file is read only up to the size its expected shape gives,
so a gzip or zip bomb cannot fill the memory.
"""

import gzip
import math
import os
import struct
import tempfile
import warnings
import zipfile
import zlib

import keras
import numpy as np

DATASET_NAMES = ("digits", "fashion_mnist", "mnist")

# Where Debian's package `dataset-fashion-mnist` installs the four gzipped
# IDX files (`dpkg -L dataset-fashion-mnist`).
FASHION_MNIST_SYSTEM_DIR = "/usr/share/datasets/fashion-mnist"
# Each file's name, in Keras's cache, Debian's folder and at the origin,
# and the shape of the array it holds.
FASHION_MNIST_FILES = {
    "train-labels-idx1-ubyte.gz": (60000,),
    "train-images-idx3-ubyte.gz": (60000, 28, 28),
    "t10k-labels-idx1-ubyte.gz": (10000,),
    "t10k-images-idx3-ubyte.gz": (10000, 28, 28),
}
KERAS_DATASETS_ORIGIN = (
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
)
# The arrays of Keras's `mnist.npz` and their shapes, and that file's hash
# (from `keras.datasets.mnist.load_data`), checked on download only: a
# user's own copy with other bytes but the same arrays is welcome.
MNIST_ARRAYS = {
    "x_train": (60000, 28, 28),
    "y_train": (60000,),
    "x_test": (10000, 28, 28),
    "y_test": (10000,),
}
MNIST_SHA256 = (
    "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
)
NUM_CLASSES = 10

# The 1797 embedded digits are split once, by a seeded permutation, into
# this many training images and 297 test images.
NUM_DIGITS_TRAIN = 1500

BINARIZATION_THRESHOLD = 0.5


class DatasetUnavailableError(RuntimeError):
    """Raised when a dataset is neither on this machine nor downloadable.

    The message names each source tried and why it failed, and says what to
    install or where to put which file.
    """


class InvalidDataFileError(ValueError):
    """Raised for a data file that is not what it should be; names it."""


def load_images(name, binarize=True, seed=0):
    """Loads an image dataset as flat float32 vectors and integer labels.

    Pixel intensities are scaled to [0, 1]: the 8x8 digits (values 0 to 16)
    are divided by 16, the 28x28 MNIST-style images (0 to 255) by 255. Each
    image is flattened row by row. With `binarize=True` a pixel becomes 1.0
    where its scaled intensity is strictly greater than 0.5 and 0.0
    otherwise, a fixed threshold rather than a random draw, so every run
    sees the same data. A Bernoulli likelihood over binary pixels, as in the
    categorical VAE of Jang et al. (2017), then has a proper
    log-probability for every image.

    `"fashion_mnist"` and `"mnist"` keep their standard split. `"digits"`
    has none: a permutation drawn with `numpy.random.default_rng(seed)` puts
    1500 images into the training set and the remaining 297 into the test
    set, the same for the same seed.

    Args:
        name: one of `DATASET_NAMES`: `"digits"`, `"fashion_mnist"` or
            `"mnist"`.
        binarize: whether to threshold the pixels at 0.5 to {0, 1}.
        seed: a non-negative integer, the seed of the train/test split of
            `"digits"`. The other datasets ignore it.

    Returns:
        `((x_train, y_train), (x_test, y_test))`: `x_*` float32 NumPy arrays
        of shape `(num_images, num_pixels)`, `y_*` int64 NumPy arrays of
        shape `(num_images,)` with the class labels 0 to 9.

    Raises:
        ValueError: for an unknown `name` or an invalid argument.
        DatasetUnavailableError: when no source gives the dataset whole.

    Example:

    >>> (x_train, y_train), (x_test, y_test) = load_images("digits")
    >>> x_train.shape, x_test.shape
    ((1500, 64), (297, 64))
    """
    if name not in DATASET_NAMES:
        expected = ", ".join(repr(known) for known in DATASET_NAMES)
        raise _invalid_argument("name", f"one of {expected}", name)
    if not isinstance(binarize, (bool, np.bool_)):
        raise _invalid_argument("binarize", "a boolean", binarize)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise _invalid_argument("seed", "an integer >= 0", seed)
    if seed < 0:
        raise _invalid_argument("seed", "an integer >= 0", seed)
    if name == "digits":
        (x_train, y_train), (x_test, y_test) = _load_digits(int(seed))
    elif name == "fashion_mnist":
        (x_train, y_train), (x_test, y_test) = _load_fashion_mnist()
    else:
        (x_train, y_train), (x_test, y_test) = _load_mnist()
    if binarize:
        x_train = _binarize(x_train)
        x_test = _binarize(x_test)
    return (x_train, y_train), (x_test, y_test)


def _invalid_argument(name, expected, value):
    return ValueError(
        f"Invalid value received for argument `{name}`. Expected {expected}. "
        f"Received: {name}={value!r}"
    )


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


"""
## Reading files with a bounded size
"""


def read_idx_gz(path, expected_shape):
    """Reads a gzipped IDX file of unsigned bytes with a known shape.

    The IDX header (two zero bytes, the type 0x08, the number of dimensions,
    then each dimension as a big-endian 32-bit integer) must give
    `expected_shape`. Then exactly that many bytes are read, plus one to
    check that nothing follows: at most `prod(expected_shape) + 1` bytes are
    decompressed, whatever the file holds.

    Returns:
        A uint8 array of shape `expected_shape`.

    Raises:
        InvalidDataFileError: naming `path`, for a file that is not a
            readable gzip file or does not hold that array exactly.
    """
    num_dims = len(expected_shape)
    num_bytes = math.prod(expected_shape)
    try:
        with gzip.open(path, "rb") as file:
            header = file.read(4 + 4 * num_dims)
            data = file.read(num_bytes)
            trailing = file.read(1)
    except (OSError, EOFError, zlib.error) as error:
        raise InvalidDataFileError(
            f"{path} is not a readable gzip file ({error})"
        ) from None
    if len(header) < 4 + 4 * num_dims:
        raise InvalidDataFileError(f"{path} is too short for an IDX header")
    zeros, data_type, dims = struct.unpack(">HBB", header[:4])
    shape = struct.unpack(f">{num_dims}I", header[4:])
    if (zeros, data_type, dims, shape) != (0, 0x08, num_dims, expected_shape):
        raise InvalidDataFileError(
            f"{path} does not start with the IDX header of a uint8 array "
            f"of shape {expected_shape}"
        )
    if len(data) < num_bytes or trailing:
        raise InvalidDataFileError(
            f"{path} does not hold exactly the {num_bytes} bytes of data "
            f"its header declares"
        )
    return np.frombuffer(data, dtype=np.uint8).reshape(expected_shape)


def read_npz(path, expected_shapes):
    """Reads integer arrays of known shapes from a `.npz` file.

    Each array's `.npy` header is read first (NumPy caps its length); an
    array whose shape is not the expected one, or whose type is not an
    integer type, is refused before its data is read. Then exactly its
    bytes are read, plus one to check that nothing follows.

    Returns:
        A dict from each name of `expected_shapes` to its array.

    Raises:
        InvalidDataFileError: naming `path`, for a file that is not a
            readable `.npz` file or lacks one of those arrays.
    """
    arrays = {}
    try:
        with zipfile.ZipFile(path) as archive:
            for name, expected_shape in expected_shapes.items():
                if f"{name}.npy" not in archive.namelist():
                    raise InvalidDataFileError(f"{path} has no array {name!r}")
                with archive.open(f"{name}.npy") as member:
                    arrays[name] = _read_npy_member(
                        path, name, member, expected_shape
                    )
    except (OSError, EOFError, zlib.error, zipfile.BadZipFile) as error:
        raise InvalidDataFileError(
            f"{path} is not a readable .npz file ({error})"
        ) from None
    return arrays


def _read_npy_member(path, name, member, expected_shape):
    try:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            header = np.lib.format.read_array_header_1_0(member)
        else:
            header = np.lib.format.read_array_header_2_0(member)
    except ValueError as error:
        raise InvalidDataFileError(
            f"{path}: array {name!r} has no valid .npy header ({error})"
        ) from None
    shape, fortran_order, dtype = header
    if tuple(shape) != expected_shape or dtype.kind not in "ui":
        raise InvalidDataFileError(
            f"{path}: array {name!r} is {dtype} of shape {tuple(shape)}; "
            f"expected integers of shape {expected_shape}"
        )
    num_bytes = math.prod(expected_shape) * dtype.itemsize
    data = member.read(num_bytes)
    if len(data) < num_bytes or member.read(1):
        raise InvalidDataFileError(
            f"{path}: array {name!r} does not hold exactly the {num_bytes} "
            "bytes its header declares"
        )
    order = "F" if fortran_order else "C"
    return np.frombuffer(data, dtype=dtype).reshape(expected_shape, order=order)


def _check_labels(path, labels):
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise InvalidDataFileError(
            f"{path} holds labels outside 0..{NUM_CLASSES - 1}"
        )
    return labels


"""
## Keras's cache and downloads
"""


def keras_home():
    """The folder in which Keras caches downloads, by `get_file`'s rule.

    `$KERAS_HOME`, else `~/.keras`; `/tmp/.keras` where that folder is not
    writable. Read when called, so a changed `$KERAS_HOME` counts.
    """
    home = os.path.expanduser(
        os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    )
    if not os.access(home, os.W_OK):
        temp_root = "/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir()
        home = os.path.join(temp_root, ".keras")
    return home


def _download_and_read(file_name, subdir, read, file_hash=None):
    """Downloads a file with `keras.utils.get_file` and reads it.

    The file goes to Keras's cache when the cache has no file of that name.
    Where the cache holds one (which was found invalid), the download goes
    to a temporary folder instead: `get_file` would otherwise take the
    user's file for its own, and could delete it.
    """
    cache_subdir = os.path.join("datasets", subdir)
    cached = os.path.join(keras_home(), cache_subdir, file_name)
    origin = KERAS_DATASETS_ORIGIN + file_name
    if not os.path.lexists(cached):
        path = keras.utils.get_file(
            file_name,
            origin=origin,
            file_hash=file_hash,
            cache_dir=keras_home(),
            cache_subdir=cache_subdir,
        )
        return read(path)
    with tempfile.TemporaryDirectory() as temporary_dir:
        path = keras.utils.get_file(
            file_name,
            origin=origin,
            file_hash=file_hash,
            cache_dir=temporary_dir,
            cache_subdir="download",
        )
        return read(path)


def _read_idx_folder(folder, failures):
    """Reads the Fashion-MNIST files of a folder: a dict, None if missing.

    A file that is present but invalid is named in a warning and in
    `failures`, and counts as missing.
    """
    arrays = {}
    for file_name, shape in FASHION_MNIST_FILES.items():
        path = os.path.join(folder, file_name)
        if not os.path.isfile(path):
            arrays[file_name] = None
            continue
        try:
            array = read_idx_gz(path, shape)
            if len(shape) == 1:
                array = _check_labels(path, array)
        except InvalidDataFileError as error:
            warnings.warn(
                f"Skipped an invalid Fashion-MNIST file: {error}. The file "
                "is left as it is; trying the next source.",
                stacklevel=4,
            )
            failures.append(str(error))
            array = None
        arrays[file_name] = array
    return arrays


def _fashion_mnist_arrays(arrays):
    y_train, x_train, y_test, x_test = (
        arrays[file_name] for file_name in FASHION_MNIST_FILES
    )
    return (
        (_flat_images(x_train, 255.0), _labels(y_train)),
        (_flat_images(x_test, 255.0), _labels(y_test)),
    )


def _load_fashion_mnist():
    failures = []
    cache_dir = os.path.join(keras_home(), "datasets", "fashion-mnist")
    cached = _read_idx_folder(cache_dir, failures)
    if all(array is not None for array in cached.values()):
        return _fashion_mnist_arrays(cached)
    system = _read_idx_folder(FASHION_MNIST_SYSTEM_DIR, failures)
    if all(array is not None for array in system.values()):
        return _fashion_mnist_arrays(system)
    arrays = dict(cached)
    for file_name, shape in FASHION_MNIST_FILES.items():
        if arrays[file_name] is not None:
            continue
        try:
            arrays[file_name] = _download_and_read(
                file_name,
                "fashion-mnist",
                lambda path, shape=shape: read_idx_gz(path, shape),
            )
        except Exception as error:
            failures.append(
                f"downloading {KERAS_DATASETS_ORIGIN + file_name} failed "
                f"({error})"
            )
            raise DatasetUnavailableError(
                _fashion_mnist_advice(cache_dir, failures)
            ) from None
    return _fashion_mnist_arrays(arrays)


def _fashion_mnist_advice(cache_dir, failures):
    if os.path.isdir(FASHION_MNIST_SYSTEM_DIR):
        install = (
            "Debian's package dataset-fashion-mnist is installed, but its "
            f"files in {FASHION_MNIST_SYSTEM_DIR} are incomplete or damaged: "
            "reinstall it with `apt-get install --reinstall "
            "dataset-fashion-mnist`"
        )
    else:
        install = (
            "Install Debian's package with `apt-get install "
            "dataset-fashion-mnist`"
        )
    return (
        "The 'fashion_mnist' dataset could not be loaded from Keras's cache "
        f"({cache_dir}), from {FASHION_MNIST_SYSTEM_DIR} or by a download: "
        + "; ".join(failures)
        + f". {install}, or connect to the network once so that it can be "
        "downloaded into Keras's cache."
    )


def _read_mnist(path):
    arrays = read_npz(path, MNIST_ARRAYS)
    _check_labels(path, arrays["y_train"])
    _check_labels(path, arrays["y_test"])
    return (
        (_flat_images(arrays["x_train"], 255.0), _labels(arrays["y_train"])),
        (_flat_images(arrays["x_test"], 255.0), _labels(arrays["y_test"])),
    )


def _load_mnist():
    cache_path = os.path.join(keras_home(), "datasets", "mnist.npz")
    failures = []
    if os.path.isfile(cache_path):
        try:
            return _read_mnist(cache_path)
        except InvalidDataFileError as error:
            warnings.warn(
                f"Skipped an invalid MNIST file: {error}. The file is left "
                "as it is; trying a download to a temporary folder.",
                stacklevel=3,
            )
            failures.append(str(error))
    else:
        failures.append(f"{cache_path} does not exist")
    try:
        return _download_and_read(
            "mnist.npz", "", _read_mnist, file_hash=MNIST_SHA256
        )
    except Exception as error:
        failures.append(
            f"downloading {KERAS_DATASETS_ORIGIN}mnist.npz failed ({error})"
        )
    raise DatasetUnavailableError(
        "The 'mnist' dataset could not be loaded: "
        + "; ".join(failures)
        + ". Connect to the network once so that it can be downloaded into "
        f"Keras's cache, or copy a valid `mnist.npz` (the arrays x_train, "
        f"y_train, x_test and y_test of Keras's file) to {cache_path}."
    )
