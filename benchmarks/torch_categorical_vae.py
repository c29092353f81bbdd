"""Categorical VAE of Jang et al. (2017) in plain PyTorch, as a baseline.

The same model as the project's Keras example, written without Keras, so
that the two can be compared on the same data for the same number of epochs:

- encoder: pixels -> 512 -> 256 (ReLU) -> logits of `num_variables`
  categorical variables with `num_categories` categories each (30x10);
- latent sample: Gumbel-softmax, softmax((logits + gumbel_noise) /
  temperature), relaxed by default, straight-through with `--hard` (the
  one-hot argmax forward, the relaxed gradient backward);
- temperature: max(0.5, 1.0 * exp(-rate * step)), with the rate and the
  update interval of the Keras example (`temperature_schedule` in
  examples/categorical_vae.py): 20 updates, the floor at half the run;
- decoder: latent -> 256 -> 512 (ReLU) -> pixel logits, a Bernoulli
  likelihood on binarized images (binary cross-entropy with logits, summed
  over pixels);
- KL of each posterior categorical to the uniform prior, analytic, summed
  over variables;
- loss: the negative ELBO, reconstruction plus KL, in nats per image
  (averaged over the batch); Adam with a learning rate of 1e-3, batches of
  100 images.

Each epoch prints the training loss (the negative ELBO with the relaxed
sample, averaged over the epoch's batches) and the epoch's seconds. At the
end the test negative ELBO is estimated with one discrete sample per image
(an exact one-hot categorical draw, not the relaxation), and a JSON line
sums up the run.

Usage:

```
python benchmarks/torch_categorical_vae.py --dataset fashion_mnist --epochs 10
```

References:
    - [Jang et al., 2017. Categorical Reparameterization with
      Gumbel-Softmax](https://arxiv.org/abs/1611.01144)
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional

# The data loader is the examples' own module, beside them in examples/.
EXAMPLES_DIR = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples"
)
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

# image_datasets imports Keras; with its torch backend that loads nothing that
# this script has not loaded already (the TensorFlow default would load
# TensorFlow and its threads next to the benchmark).
os.environ.setdefault("KERAS_BACKEND", "torch")

import categorical_vae  # noqa: E402
import image_datasets  # noqa: E402

BATCH_SIZE = 100
LEARNING_RATE = 1e-3
INITIAL_TEMPERATURE = 1.0
MINIMUM_TEMPERATURE = 0.5

# A uniform draw kept in [tiny, 1 - 2**-24] gives a finite Gumbel sample
# -log(-log(u)): a draw of exactly 0 would give -inf and then NaN in the
# softmax (torch.nn.functional.gumbel_softmax has had such NaN bugs).
TINY = float(np.finfo(np.float32).tiny)
ONE_MINUS_EPSILON = float(np.nextafter(np.float32(1.0), np.float32(0.0)))


def parse_latent(text):
    """Parses "NxK" into (num_variables, num_categories)."""
    try:
        num_variables, num_categories = (int(part) for part in text.split("x"))
    except ValueError:
        num_variables = num_categories = 0
    if num_variables < 1 or num_categories < 2:
        raise argparse.ArgumentTypeError(
            "expected NUM_VARIABLESxNUM_CATEGORIES with at least 1 variable "
            f"of at least 2 categories, such as 30x10. Received: {text!r}"
        )
    return num_variables, num_categories


def positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 1. Received: {text!r}"
        )
    return value


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--dataset", choices=image_datasets.DATASET_NAMES, default="digits"
    )
    parser.add_argument("--epochs", type=positive_int, default=10)
    parser.add_argument(
        "--latent",
        type=parse_latent,
        default=(30, 10),
        help="NUM_VARIABLESxNUM_CATEGORIES (default 30x10)",
    )
    parser.add_argument(
        "--hard",
        action="store_true",
        help="straight-through samples: one-hot forward, relaxed backward",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=positive_int,
        default=2,
        help="CPU threads for PyTorch (torch.set_num_threads)",
    )
    parser.add_argument(
        "--device",
        choices=("auto", "cpu", "cuda"),
        default="auto",
        help="auto: the GPU where PyTorch sees one, as Keras does",
    )
    parser.add_argument(
        "--output-json", help="also write the final JSON summary to this path"
    )
    return parser.parse_args()


def gumbel_noise(shape, generator):
    uniform = torch.rand(shape, generator=generator, device=generator.device)
    uniform = uniform.clamp(TINY, ONE_MINUS_EPSILON)
    return -torch.log(-torch.log(uniform))


def gumbel_softmax(logits, temperature, hard, generator):
    """A relaxed one-hot sample; straight-through one-hot when `hard`."""
    noise = gumbel_noise(logits.shape, generator)
    relaxed = functional.softmax((logits + noise) / temperature, dim=-1)
    if not hard:
        return relaxed
    one_hot = functional.one_hot(relaxed.argmax(dim=-1), logits.shape[-1]).to(
        relaxed.dtype
    )
    return one_hot - relaxed.detach() + relaxed


def sample_one_hot(logits, generator):
    """An exact categorical sample, one-hot, by the Gumbel-max trick."""
    noise = gumbel_noise(logits.shape, generator)
    categories = (logits + noise).argmax(dim=-1)
    return functional.one_hot(categories, logits.shape[-1]).to(logits.dtype)


def categorical_kl_to_uniform(logits):
    """KL(softmax(logits) || uniform), summed over variables: (batch,)."""
    log_posterior = functional.log_softmax(logits, dim=-1)
    posterior = log_posterior.exp()
    log_prior = -math.log(logits.shape[-1])
    return (posterior * (log_posterior - log_prior)).sum(dim=(-2, -1))


class CategoricalVAE(nn.Module):
    def __init__(self, num_pixels, num_variables, num_categories):
        super().__init__()
        self.num_variables = num_variables
        self.num_categories = num_categories
        self.encoder = nn.Sequential(
            nn.Linear(num_pixels, 512),
            nn.ReLU(),
            nn.Linear(512, 256),
            nn.ReLU(),
            nn.Linear(256, num_variables * num_categories),
        )
        self.decoder = nn.Sequential(
            nn.Linear(num_variables * num_categories, 256),
            nn.ReLU(),
            nn.Linear(256, 512),
            nn.ReLU(),
            nn.Linear(512, num_pixels),
        )

    def encode(self, images):
        logits = self.encoder(images)
        return logits.view(-1, self.num_variables, self.num_categories)

    def negative_elbo(self, images, latent, logits):
        """Per-image negative ELBO in nats: reconstruction plus KL."""
        pixel_logits = self.decoder(latent.flatten(start_dim=1))
        reconstruction = functional.binary_cross_entropy_with_logits(
            pixel_logits, images, reduction="none"
        ).sum(dim=-1)
        return reconstruction + categorical_kl_to_uniform(logits)


def train_epoch(model, optimizer, images, state, hard, generator):
    """One pass over `images` in shuffled batches; returns the mean loss."""
    model.train()
    order = torch.randperm(
        len(images), generator=generator, device=generator.device
    )
    losses = []
    for start in range(0, len(images), BATCH_SIZE):
        schedule = state["schedule"]
        if state["step"] % schedule.update_every == 0:
            state["temperature"] = max(
                schedule.minimum,
                schedule.initial * math.exp(-schedule.rate * state["step"]),
            )
        batch = images[order[start : start + BATCH_SIZE]]
        loss = train_step(
            model, optimizer, batch, state["temperature"], hard, generator
        )
        losses.append(loss.item())
        state["step"] += 1
    return float(np.mean(losses))


def train_step(model, optimizer, batch, temperature, hard, generator):
    """One Adam step on `batch`; returns the batch's mean negative ELBO."""
    logits = model.encode(batch)
    latent = gumbel_softmax(logits, temperature, hard, generator)
    loss = model.negative_elbo(batch, latent, logits).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss


@torch.no_grad()
def evaluate_negative_elbo(model, images, generator):
    """Mean negative ELBO with one exact one-hot sample per image."""
    model.eval()
    total = 0.0
    for start in range(0, len(images), 1000):
        batch = images[start : start + 1000]
        logits = model.encode(batch)
        latent = sample_one_hot(logits, generator)
        total += model.negative_elbo(batch, latent, logits).sum().item()
    return total / len(images)


def main():
    arguments = parse_arguments()
    torch.set_num_threads(arguments.threads)
    torch.manual_seed(arguments.seed)
    device = arguments.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = torch.Generator(device=device).manual_seed(arguments.seed)
    (x_train, _), (x_test, _) = image_datasets.load_images(
        arguments.dataset, binarize=True
    )
    x_train = torch.from_numpy(x_train).to(device)
    x_test = torch.from_numpy(x_test).to(device)
    num_variables, num_categories = arguments.latent
    model = CategoricalVAE(x_train.shape[1], num_variables, num_categories)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    total_steps = arguments.epochs * math.ceil(len(x_train) / BATCH_SIZE)
    state = {
        "step": 0,
        "temperature": INITIAL_TEMPERATURE,
        "schedule": categorical_vae.temperature_schedule(
            total_steps, INITIAL_TEMPERATURE, MINIMUM_TEMPERATURE
        ),
    }
    train_losses = []
    seconds_per_epoch = []
    cpu_seconds_per_epoch = []
    for epoch in range(1, arguments.epochs + 1):
        start, start_cpu = time.perf_counter(), time.process_time()
        loss = train_epoch(
            model, optimizer, x_train, state, arguments.hard, generator
        )
        seconds = time.perf_counter() - start
        train_losses.append(loss)
        seconds_per_epoch.append(seconds)
        cpu_seconds_per_epoch.append(time.process_time() - start_cpu)
        print(
            f"epoch {epoch}/{arguments.epochs}: train loss {loss:.2f} "
            f"nats/image, temperature {state['temperature']:.3f}, "
            f"{seconds:.2f} s",
            flush=True,
        )
    test_loss = evaluate_negative_elbo(model, x_test, generator)
    summary = {
        "framework": "torch",
        "dataset": arguments.dataset,
        "epochs": arguments.epochs,
        "latent": f"{num_variables}x{num_categories}",
        "hard": arguments.hard,
        "seed": arguments.seed,
        "threads": arguments.threads,
        "device": device,
        "train_loss": [round(loss, 4) for loss in train_losses],
        "test_neg_elbo": round(test_loss, 4),
        "seconds_per_epoch": [round(s, 3) for s in seconds_per_epoch],
        "cpu_seconds_per_epoch": [round(s, 3) for s in cpu_seconds_per_epoch],
    }
    line = json.dumps(summary)
    print(line)
    if arguments.output_json:
        with open(arguments.output_json, "w") as file:
            file.write(line + "\n")


if __name__ == "__main__":
    main()
