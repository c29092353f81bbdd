"""
Title: Learning to explain: k input features per image with SubsetSampler
Author: keras-latent contributors
Date created: 2026/11/30
Last modified: 2026/11/30
Description: L2X (Chen et al. 2018) on Fashion-MNIST: a selector network
picks k patches of each image, a classifier sees only those, and the
selector learns through a relaxation of the k-subset sample.

A classifier that sees all 784 pixels of an image is accurate but says
nothing about which pixels its answer rests on. Learning to explain (L2X,
[Chen et al. 2018](https://arxiv.org/abs/1802.07814)) trains a second pair
of networks: a selector that gives each feature of an image a logit, and an
approximator that sees only the `k` selected features and must predict what
the full classifier predicts. The selection is a discrete k-subset;
`keras_latent.layers.SubsetSampler` draws it from `softmax(logits)` without
replacement in training, and the gradient reaches the selector through the
relaxed k-hot vector of Xie and Ermon (2019); at inference it returns the
exact k-hot of the `k` largest logits. The explanation of an
image is then its `k` selected features.

The features here are patches of `--patch-size` x `--patch-size` pixels (2
by default: 196 patches of a 28x28 image), which keeps the k successive
softmaxes of the relaxation cheap; `k` counts patches, so `k = 16` shows
the approximator 64 of the 784 pixels. Two baselines frame the figures:
the full classifier on all pixels, and the same approximator trained and
tested on `k` patches drawn uniformly at random for each image.

    python examples/feature_selection.py
    python examples/feature_selection.py --dataset digits --ks 2 4 8 16

It writes `results.json`, `results.md`, `selection.png` and `model.keras`
(the selector and approximator of the middle `k` of the sweep) to
`--output-dir`, and refuses to replace files there unless `--overwrite`.
"""

import argparse
import json
import math
import os
import sys
import time

import arguments
import image_datasets
import keras
import numpy as np
import output_files

import keras_latent

"""
## The models

All three models share the approximator: one hidden layer of 256 ReLU
units on the (masked) pixels, then the class logits. The selector of L2X is
an MLP of its own on the full image that gives one logit per patch; the
random baseline replaces it with frozen zero logits, so that every k-subset
of patches is equally likely, and samples at inference too
(`eval_mode="sample"`). Its sampler is straight-through: exactly k-hot in
training as at test, with no gradient to pass.
"""

HIDDEN_UNITS = 256
LEARNING_RATE = 1e-3
DEFAULTS = {  # patch size and the sweep of k, per dataset
    "fashion_mnist": (2, [4, 8, 16, 32, 64]),
    "mnist": (2, [4, 8, 16, 32, 64]),
    "digits": (1, [2, 4, 8, 16, 32]),
}
OUTPUT_FILES = ("results.json", "results.md", "selection.png", "model.keras")


def approximator(inputs, num_classes):
    hidden = keras.layers.Dense(HIDDEN_UNITS, "relu", name="hidden")(inputs)
    return keras.layers.Dense(num_classes, name="class_logits")(hidden)


def build_full_classifier(num_pixels, num_classes):
    images = keras.Input((num_pixels,), name="images")
    return keras.Model(images, approximator(images, num_classes))


def build_explainer(
    num_pixels, num_classes, patch_size, k, args, random_selection=False
):
    """Selector, `SubsetSampler` (layer `subset`), pixel mask (layer
    `pixel_mask`) and approximator, from flat images to class logits."""
    side = int(round(num_pixels**0.5))
    grid = side // patch_size
    images = keras.Input((num_pixels,), name="images")
    if random_selection:
        logits = keras.layers.Dense(
            grid * grid, kernel_initializer="zeros", trainable=False
        )(images)
    else:
        hidden = keras.layers.Dense(HIDDEN_UNITS, "relu")(images)
        logits = keras.layers.Dense(grid * grid, name="patch_logits")(hidden)
    patch_mask = keras_latent.layers.SubsetSampler(
        k,
        temperature=args.temperature,
        estimator="straight_through" if random_selection else args.estimator,
        eval_mode="sample" if random_selection else "mode",
        seed=args.seed,
        name="subset",
    )(logits)
    grid_mask = keras.layers.Reshape((grid, grid, 1))(patch_mask)
    pixel_mask = keras.layers.UpSampling2D(
        patch_size, data_format="channels_last"
    )(grid_mask)
    pixel_mask = keras.layers.Reshape((num_pixels,), name="pixel_mask")(
        pixel_mask
    )
    selected = keras.layers.Multiply()([images, pixel_mask])
    return keras.Model(images, approximator(selected, num_classes))


"""
## Relaxed or straight-through

With `estimator="relaxed"` the approximator trains on a soft mask: k
softmaxes of the noisy logits, summing to `k`, that spread their mass over
more than `k` patches, and more so as `k` grows; at test it sees the exact
k-hot mask, which it never saw in training. With `"straight_through"`
(the default here) the training mask is the exact k-hot sample, and only
the gradient to the selector is the relaxation's. On Fashion-MNIST the
relaxed estimator loses accuracy as `k` grows, the straight-through one
does not (see the end of this tutorial).
"""


def train(model, images, targets, args):
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(
        images,
        targets,
        batch_size=args.batch_size,
        epochs=args.epochs,
        verbose=0,
    )
    return model


"""
## Measuring the selections

At inference the sampler returns the k-hot of the largest logits: each
image gets exactly `k` patches, `k * patch_size**2` pixels. Accuracy is
measured against the test labels; the post-hoc accuracy of Chen et al. is
the share of test images on which the approximator agrees with the full
classifier, how faithful the explanation is to the model it explains.
"""


def predicted_classes(model, images):
    # A direct call rather than `predict`, which would trace a new function
    # for every model.
    return np.argmax(keras.ops.convert_to_numpy(model(images)), axis=-1)


def pixel_masks(model, images):
    """The 0/1 pixel mask each image gets at inference."""
    masker = keras.Model(model.input, model.get_layer("pixel_mask").output)
    return keras.ops.convert_to_numpy(masker(images, training=False))


def evaluate(model, images, labels, full_predictions):
    """The accuracy and post-hoc accuracy; NaN for a model with a NaN or
    infinite logit (diverged), whose argmax would mean nothing."""
    logits = keras.ops.convert_to_numpy(model(images))
    if not np.all(np.isfinite(logits)):
        return {"accuracy": math.nan, "post_hoc_accuracy": math.nan}
    predictions = np.argmax(logits, axis=-1)
    return {
        "accuracy": float(np.mean(predictions == labels)),
        "post_hoc_accuracy": float(np.mean(predictions == full_predictions)),
    }


def save_figure(path, frequencies, ks, images, masks, shown_k):
    """Top row: how often each pixel is selected, per k. Below: test images
    and, under each, its selected pixels at `shown_k` (the rest greyed)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    side = int(round(images.shape[-1] ** 0.5))
    columns = max(len(ks), len(images))
    figure, axes = pyplot.subplots(
        3, columns, figsize=(columns * 1.2, 4.2), squeeze=False
    )
    for axis in axes.flat:
        axis.axis("off")
    for axis, k, frequency in zip(axes[0], ks, frequencies, strict=False):
        axis.imshow(frequency.reshape(side, side), cmap="magma", vmin=0)
        axis.set_title(f"k={k}", fontsize=8)
    for column, (image, mask) in enumerate(zip(images, masks, strict=True)):
        axes[1, column].imshow(image.reshape(side, side), cmap="gray")
        shown = np.where(mask > 0, image, 0.35).reshape(side, side)
        axes[2, column].imshow(shown, cmap="gray", vmin=0, vmax=1)
    figure.suptitle(
        "Selection frequency per pixel (top); test images and their "
        f"selected pixels at k={shown_k} (bottom)",
        fontsize=9,
    )
    figure.savefig(path, dpi=100, bbox_inches="tight")
    pyplot.close(figure)


"""
## The sweep
"""


def run_sweep(data, args):
    """Trains the full classifier, then L2X and the random baseline at each
    k; returns the figures and the model of the middle k."""
    (x_train, y_train), (x_test, y_test) = data
    num_pixels, num_classes = x_train.shape[-1], image_datasets.NUM_CLASSES
    keras.utils.set_random_seed(args.seed)
    full = train(
        build_full_classifier(num_pixels, num_classes), x_train, y_train, args
    )
    # L2X explains the classifier: the approximators learn its predictions.
    targets = predicted_classes(full, x_train)
    full_predictions = predicted_classes(full, x_test)
    results = {
        "full_features": evaluate(full, x_test, y_test, full_predictions),
        "by_k": [],
    }
    saved_k = args.ks[len(args.ks) // 2]
    for k in args.ks:
        row = {"k": k, "pixels": k * args.patch_size**2}
        for random_selection in (False, True):
            keras.utils.set_random_seed(args.seed)
            model = build_explainer(
                num_pixels,
                num_classes,
                args.patch_size,
                k,
                args,
                random_selection,
            )
            train(model, x_train, targets, args)
            figures = evaluate(model, x_test, y_test, full_predictions)
            prefix = "random_" if random_selection else ""
            row.update({prefix + name: v for name, v in figures.items()})
            if not random_selection:
                row["selection_frequency"] = np.mean(
                    pixel_masks(model, x_test), axis=0
                ).tolist()
                if k == saved_k:
                    saved_model = model
        results["by_k"].append(row)
        print(
            f"k={k:3d} ({row['pixels']:3d} pixels): accuracy "
            f"{row['accuracy']:.3f} (random {row['random_accuracy']:.3f}), "
            f"post-hoc {row['post_hoc_accuracy']:.3f} "
            f"(random {row['random_post_hoc_accuracy']:.3f})",
            flush=True,
        )
    return results, saved_model, saved_k


"""
## Command line
"""


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description="L2X feature selection with SubsetSampler: accuracy "
        "against k, and the selected pixels.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--dataset",
        choices=image_datasets.DATASET_NAMES,
        help="default: fashion_mnist, or the embedded digits where it "
        "cannot be loaded",
    )
    parser.add_argument("--ks", type=int, nargs="+", help="the k of the sweep")
    parser.add_argument("--patch-size", type=int, help="2 (1 for digits)")
    parser.add_argument("--train-images", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--temperature", type=float, default=0.5)
    parser.add_argument(
        "--estimator",
        default="straight_through",
        choices=("relaxed", "straight_through"),
        help="the sampler's gradient estimator in training",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="outputs/feature_selection")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace earlier outputs"
    )
    args = parser.parse_args(argv)
    arguments.require_at_least_one(
        parser, args, ("train_images", "epochs", "batch_size")
    )
    if not 0 < args.temperature < math.inf:
        parser.error("--temperature must be above 0 and finite")
    return parser, args


def load_data(parser, args):
    try:
        data = image_datasets.load_images(
            args.dataset or "fashion_mnist", binarize=False
        )
        args.dataset = args.dataset or "fashion_mnist"
    except image_datasets.DatasetUnavailableError as error:
        if args.dataset is not None:
            parser.exit(2, f"error: {error}\n")
        print(f"Fashion-MNIST is unavailable ({error}); using the digits.")
        args.dataset = "digits"
        data = image_datasets.load_images("digits", binarize=False)
    patch_size, ks = DEFAULTS[args.dataset]
    if args.patch_size is None:
        args.patch_size = patch_size
    if args.ks is None:
        args.ks = ks
    (x_train, y_train), test = data
    side = int(round(x_train.shape[-1] ** 0.5))
    if args.patch_size < 1 or side % args.patch_size:
        parser.error(f"--patch-size must divide the image side, {side}")
    num_patches = (side // args.patch_size) ** 2
    if not all(1 <= k < num_patches for k in args.ks):
        parser.error(f"each of --ks must be between 1 and {num_patches - 1}")
    return (x_train[: args.train_images], y_train[: args.train_images]), test


def main(argv=None):
    parser, args = parse_arguments(argv)
    output_files.refuse_to_overwrite(
        parser, args.output_dir, OUTPUT_FILES, args.overwrite
    )
    data = load_data(parser, args)
    start = time.perf_counter()
    results, model, saved_k = run_sweep(data, args)
    seconds = time.perf_counter() - start

    _, (x_test, _) = data
    os.makedirs(args.output_dir, exist_ok=True)
    model_path = os.path.join(args.output_dir, "model.keras")
    model.save(model_path)
    reloaded = keras.saving.load_model(model_path)
    before, after = (
        keras.ops.convert_to_numpy(m(x_test)) for m in (model, reloaded)
    )
    difference = float(np.max(np.abs(before - after)))
    if not np.allclose(before, after, rtol=1e-5, atol=1e-5):
        print(
            f"error: the reloaded model differs by {difference:.3g}",
            file=sys.stderr,
        )
        return 1

    save_figure(
        os.path.join(args.output_dir, "selection.png"),
        [np.asarray(row["selection_frequency"]) for row in results["by_k"]],
        args.ks,
        x_test[:6],
        pixel_masks(model, x_test)[:6],  # a shape that JAX has compiled
        saved_k,
    )
    summary = {
        name: value
        for name, value in vars(args).items()
        if name not in ("output_dir", "overwrite")
    }
    summary.update(
        backend=keras.backend.backend(),
        test_images=len(x_test),
        saved_k=saved_k,
        reload_max_abs_difference=difference,
        seconds=seconds,
        **results,
    )
    with open(os.path.join(args.output_dir, "results.json"), "w") as file:
        json.dump(summary, file, indent=2)
    with open(os.path.join(args.output_dir, "results.md"), "w") as file:
        file.write(markdown_table(summary))
    print(markdown_table(summary))
    print(f"Wrote {args.output_dir}/{{{', '.join(OUTPUT_FILES)}}}")
    return 0


def markdown_table(summary):
    full = summary["full_features"]
    lines = [
        f"{summary['dataset']}, {summary['train_images']} training images, "
        f"{summary['epochs']} epochs, patches of {summary['patch_size']}x"
        f"{summary['patch_size']} pixels, {summary['estimator']} at "
        f"temperature {summary['temperature']}, backend {summary['backend']}; "
        f"all pixels: test accuracy {full['accuracy']:.3f}",
        "",
        "| k | pixels | L2X accuracy | random-k accuracy | L2X post-hoc "
        "accuracy | random-k post-hoc accuracy |",
        "|---|---|---|---|---|---|",
    ]
    for row in summary["by_k"]:
        lines.append(
            f"| {row['k']} | {row['pixels']} | {row['accuracy']:.3f} | "
            f"{row['random_accuracy']:.3f} | {row['post_hoc_accuracy']:.3f} "
            f"| {row['random_post_hoc_accuracy']:.3f} |"
        )
    return "\n".join(lines) + "\n"


"""
## What to look for

On Fashion-MNIST (the defaults, JAX), the classifier on all pixels reaches
0.839 test accuracy. L2X keeps 0.694 with 16 pixels (k = 4) and 0.774 with
64 (k = 16), where the same number of random pixels gives 0.329 and 0.584;
the gap closes as `k` grows (0.795 against 0.744 at k = 64). The top row
of `selection.png` shows that the selector returns to a few places, the
rows below that it still picks per image. With `--estimator relaxed` the
accuracy falls as `k` grows instead (0.709, 0.450, 0.397 at k = 4, 16,
64): the soft training masks are not the hard ones the test uses.
"""

if __name__ == "__main__":
    sys.exit(main())
