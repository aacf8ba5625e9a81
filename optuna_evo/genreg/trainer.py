"""GENREG: trust-based, gradient-free evolution of MLP weights, the whole population batched.

GENREG trains a classifier without gradients. A population of genomes (complete sets of MLP
weights) is shown a few images per class every generation; each genome earns *trust* for its
correct predictions, the most trusted genomes survive and the rest are replaced by mutated
copies of survivors.

Reading of the seed
-------------------
The seed code is not part of this repository; :class:`GenregTrainer`'s defaults reconstruct it
as follows (every step is one generation):

1. **Sample**: ``samples_per_class`` training images of every class, drawn uniformly with
   replacement from that class (every genome sees the same images).
2. **Predict**: each genome classifies every image by the argmax of its MLP's output
   (``activation`` between layers, none after the last).
3. **Trust**: ``trust = trust * (1 - trust_decay) + sum(rewards)``, a reward being
   ``correct_reward`` (+10) per correct and ``wrong_penalty`` (-1.5) per wrong prediction.
4. **Survive**: genomes are sorted by trust; the top ``survival_cutoff`` (20 %) survive with
   their trust.
5. **Reproduce**: every other slot is refilled by a child of a survivor drawn with probability
   proportional to ``trust - min(trust) + eps`` (the shift makes every weight positive; ``min``
   is over the whole population, so even the weakest survivor can be drawn). A child is a copy
   of its parent plus Gaussian noise of standard deviation ``mutation_scale`` on a random mask
   of its weights and biases (each one independently with probability
   ``child_mutation_rate``); it starts with ``trust_inheritance`` (3 %) of its parent's trust.
6. **Mutate**: every genome, survivors included, then receives the same kind of noise with
   probability ``mutation_rate`` per weight (*base mutation*).

Choices the seed leaves open, made here and exposed as arguments: the hidden activation is
``tanh``; weights start as ``N(0, init_scale^2 / fan_in)`` and biases at 0; the default
``mutation_scale`` is 0.05 (the seed's value is not given; about the initial weights' size, and
:class:`~optuna_evo.genreg.GenregObjective` tunes it). "The best genome" is the survivor ranked
first at the last evaluation (row 0 of the population; children's inherited trust is not
earned, so it never makes a child the best). Without elitism that genome has received one round
of base mutation since it was evaluated, exactly as in the seed.

What the seed arithmetic does (measured)
----------------------------------------
A survivor carries about ``1 / trust_decay`` (5) generations of rewards, a new child 3 % of its
parent's trust plus one generation's. Once rewards are positive (accuracy above
``-wrong_penalty / (correct_reward - wrong_penalty)``, 13 %), children therefore almost never
outrank a survivor: the survivors stay, drift under base mutation and selection nearly stops.
On FashionMNIST (784-64-10, population 200) the seed defaults plateau around 35-37 %
validation accuracy from generation ~300 to 1000 (CPU runs of this module). Letting trust
live one generation (``trust_decay=1``) or children inherit all of it
(``trust_inheritance=1``) restores selection: 64 % and 60 % after 400 generations; with the
options below (``fitness="logprob"``, ``elitism=1``, ``mutation_rate=0.01``,
``child_mutation_rate=0.05``, ``mutation_scale=0.02``) 72 % after 400 and 77 % after 3000;
with ``mutation_scale=0.01`` and ``samples_per_class=50``, 79 % after 1000 and 80-81 % from
1500 to 2500 generations.
:class:`~optuna_evo.genreg.GenregObjective` searches ``trust_decay`` and
``trust_inheritance`` for this reason.

Options beyond the seed (all off by default)
--------------------------------------------
* ``elitism=k``: the ``k`` most trusted survivors skip base mutation, so the best genome is
  never damaged.
* ``adaptive_mutation=tau``: self-adaptive mutation scale. Every genome carries its own scale;
  a child's is its parent's times ``exp(tau * N(0, 1))`` (clamped to ``[1e-5, 10]``), so scales
  that produce good children spread through the population.
* ``fitness="logprob"``: the reward of a generation is the mean log-probability (log-softmax)
  a genome gives the true classes instead of the count-based reward; a smoother signal than
  argmax correctness.
* more samples per generation: raise ``samples_per_class`` (less noisy trust).

Batched evaluation
------------------
The population lives in one ``[population, n_params]`` tensor; :attr:`GenregTrainer.weights`
are views of shape ``[P, in, out]`` and :attr:`GenregTrainer.biases` ``[P, out]`` into it. One
batched matmul per layer evaluates every genome on the sampled images at once
(``h = act(x @ W + b[:, None])``, i.e. ``einsum("bi,pio->pbo")``, giving logits
``[P, B, C]``). Mutation draws the positions of the Bernoulli mask directly (geometric gaps
between them): ``O(rate * n)`` random numbers instead of ``O(n)`` for the same distribution,
and no host synchronisation on the GPU.
``mode="loop"`` runs the seed's style instead: one genome at a time, dense masks per genome; it
is the reference the benchmark compares with.

Everything runs under :func:`torch.inference_mode`; no tensor requires grad. All randomness
comes from one :class:`torch.Generator` on the trainer's device, so a seed reproduces a run on
the same device and software.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
import math
import os
import time
from typing import Any

import torch

from optuna_evo._experimental import experimental_class
from optuna_evo._logging import get_logger
from optuna_evo._validation import check_choice
from optuna_evo._validation import check_float
from optuna_evo._validation import check_int
from optuna_evo._validation import check_probability
from optuna_evo.objectives.data import resolve_device

_logger = get_logger(__name__)

ACTIVATIONS: tuple[str, ...] = ("tanh", "relu")
"""Hidden activations :class:`GenregTrainer` accepts."""

FITNESSES: tuple[str, ...] = ("accuracy", "logprob")
"""Reward kinds: the seed's per-prediction reward, or the mean log-probability of the truth."""

MODES: tuple[str, ...] = ("batched", "loop")
"""Execution modes: the whole population at once, or the seed's genome-by-genome loop."""

LOGPROB_OPTIONS: dict[str, Any] = {
    "trust_decay": 1.0,
    "fitness": "logprob",
    "elitism": 1,
    "mutation_rate": 0.01,
    "child_mutation_rate": 0.05,
    "mutation_scale": 0.01,
    "samples_per_class": 100,
    "population": 400,
}
"""Options beyond the seed that learn much faster on FashionMNIST / MNIST: trust that lives
one generation, the mean log-probability reward, one elite, sparse small mutations and a larger
sample (79 % validation accuracy after 1000 CPU generations). A GPU is advised."""

ALPHABET_OPTIONS: dict[str, Any] = {
    "trust_decay": 1.0,
    "fitness": "logprob",
    "elitism": 1,
    "mutation_rate": 0.01,
    "child_mutation_rate": 0.05,
    "mutation_scale": 0.1,
}
"""Options beyond the seed that read all 26 rendered letters within a few hundred
generations (the same selection fixes as :data:`LOGPROB_OPTIONS`, larger mutations)."""

_MIN_SCALE = 1e-5
_MAX_SCALE = 10.0
_LAST_TENSORS = ("last_correct", "last_rewards", "last_trust", "last_sources")


def _act(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    # In-place variants: the pre-activation is a fresh temporary, so overwriting it is free.
    return torch.tanh_ if name == "tanh" else torch.relu_


def forward(
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    x: torch.Tensor,
    activation: str = "tanh",
) -> torch.Tensor:
    """MLP forward pass of one genome or of a whole population at once.

    Args:
        weights: Per layer, ``[in, out]`` (one genome) or ``[P, in, out]`` (a population).
        biases: Per layer, ``[out]`` or ``[P, out]``.
        x: Inputs ``[B, in]``.
        activation: Hidden activation, one of :data:`ACTIVATIONS`.

    Returns:
        Logits ``[B, C]`` for one genome or ``[P, B, C]`` for a population.
    """
    act = _act(activation)
    h = x
    last = len(weights) - 1
    with torch.inference_mode():
        for i, (w, b) in enumerate(zip(weights, biases)):
            # [B, in] @ [P, in, out] broadcasts to [P, B, out]: one batched matmul per layer.
            h = torch.matmul(h, w)
            h += b.unsqueeze(-2)
            if i < last:
                h = act(h)
    return h


def evaluate_batched(
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    x: torch.Tensor,
    activation: str = "tanh",
) -> torch.Tensor:
    """Logits ``[P, B, C]`` of every genome of a population, in one batched pass per layer.

    Args:
        weights: Per layer ``[P, in, out]``.
        biases: Per layer ``[P, out]``.
        x: Inputs ``[B, in]``.
        activation: Hidden activation.

    Returns:
        The logits ``[P, B, C]``.
    """
    return forward(weights, biases, x, activation)


def evaluate_loop(
    weights: Sequence[torch.Tensor],
    biases: Sequence[torch.Tensor],
    x: torch.Tensor,
    activation: str = "tanh",
) -> torch.Tensor:
    """The same logits as :func:`evaluate_batched`, one genome at a time (the seed's style).

    Args:
        weights: Per layer ``[P, in, out]``.
        biases: Per layer ``[P, out]``.
        x: Inputs ``[B, in]``.
        activation: Hidden activation.

    Returns:
        The logits ``[P, B, C]``.
    """
    population = weights[0].shape[0]
    outputs = [
        forward([w[p] for w in weights], [b[p] for b in biases], x, activation)
        for p in range(population)
    ]
    with torch.inference_mode():
        return torch.stack(outputs)


def per_class_accuracy(
    predictions: torch.Tensor, targets: torch.Tensor, n_classes: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Accuracy and sample count of every class.

    Args:
        predictions: Predicted classes ``[N]``.
        targets: True classes ``[N]``.
        n_classes: Number of classes.

    Returns:
        ``(accuracy, count)``, both ``[n_classes]`` on the CPU; a class without samples has
        accuracy ``nan``.
    """
    targets = targets.long()
    count = torch.bincount(targets, minlength=n_classes).double()
    hits = torch.bincount(targets[predictions == targets], minlength=n_classes).double()
    accuracy = torch.where(count > 0, hits / count.clamp_min(1), torch.full_like(count, math.nan))
    return accuracy.cpu(), count.long().cpu()


def format_per_class_table(
    accuracy: torch.Tensor | Sequence[float],
    class_names: Sequence[str] | None = None,
    count: torch.Tensor | Sequence[int] | None = None,
) -> str:
    """Markdown table of per-class accuracies, like the seed's per-digit breakdown.

    Each row gives the class, its accuracy and a verdict as in the seed: ``mastered`` at
    >= 90 %, ``learning`` at >= 50 %, ``struggling`` below.

    Args:
        accuracy: Accuracy per class in ``[0, 1]`` (``nan`` for a class without samples).
        class_names: Names of the classes; defaults to their indices.
        count: Samples per class (adds a column when given).

    Returns:
        The table as a string.
    """
    values = [float(a) for a in accuracy]
    names = list(class_names) if class_names is not None else [str(i) for i in range(len(values))]
    if len(names) != len(values):
        raise ValueError(
            f"`class_names` must have one entry per class ({len(values)}), got {len(names)}."
        )
    header = "| class | accuracy |" + (" samples |" if count is not None else "") + " verdict |"
    rule = "|---|---:|" + ("---:|" if count is not None else "") + "---|"
    rows = [header, rule]
    counts = [int(c) for c in count] if count is not None else None
    for i, (name, acc) in enumerate(zip(names, values)):
        if math.isnan(acc):
            cell, verdict = "n/a", "no samples"
        else:
            cell = f"{100 * acc:.1f} %"
            verdict = "mastered" if acc >= 0.9 else "learning" if acc >= 0.5 else "struggling"
        extra = f" {counts[i]} |" if counts is not None else ""
        rows.append(f"| {name} | {cell} |{extra} {verdict} |")
    return "\n".join(rows)


@dataclass
class Genome:
    """One network: per-layer weights ``[in, out]`` and biases ``[out]``.

    Attributes:
        weights: Weight matrices, input layer first.
        biases: Bias vectors.
        activation: Hidden activation, one of :data:`ACTIVATIONS`.
        config: JSON-serialisable description (trainer arguments, task, results).
    """

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    activation: str = "tanh"
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        """Layer widths, e.g. ``[784, 64, 10]``."""
        return [int(self.weights[0].shape[0])] + [int(w.shape[1]) for w in self.weights]

    @property
    def device(self) -> torch.device:
        """Device of the tensors."""
        return self.weights[0].device

    def to(self, device: str | torch.device) -> Genome:
        """Return a copy on ``device``."""
        return Genome(
            [w.to(device) for w in self.weights],
            [b.to(device) for b in self.biases],
            self.activation,
            dict(self.config),
        )

    def logits(self, x: torch.Tensor, batch_size: int = 8192) -> torch.Tensor:
        """Logits ``[N, C]`` of inputs ``x`` (flattened to ``[N, in]``), in chunks."""
        x = x.reshape(len(x), -1).to(self.device, self.weights[0].dtype)
        chunks = [
            forward(self.weights, self.biases, x[i : i + batch_size], self.activation)
            for i in range(0, len(x), batch_size)
        ]
        with torch.inference_mode():
            return torch.cat(chunks) if chunks else x.new_zeros(0, self.layers[-1])

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Predicted classes ``[N]``."""
        with torch.inference_mode():
            return self.logits(x).argmax(-1)

    def accuracy(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Fraction of ``x`` classified as ``y``."""
        if len(y) == 0:
            raise ValueError("accuracy needs at least one sample.")
        with torch.inference_mode():
            return float((self.predict(x) == y.to(self.device)).double().mean())

    def per_class_accuracy(
        self, x: torch.Tensor, y: torch.Tensor, n_classes: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(accuracy, count)`` per class, see :func:`per_class_accuracy`."""
        n_classes = self.layers[-1] if n_classes is None else n_classes
        return per_class_accuracy(self.predict(x), y.to(self.device), n_classes)


@experimental_class("0.1.0")
class GenregTrainer:
    """GENREG: a population of MLPs evolved by trust, evaluated in one batched pass.

    The defaults reproduce the seed GENREG (see the module docstring for the exact reading).

    Example:

        .. code-block:: python

            from optuna_evo.genreg import GenregTrainer, load_task

            task = load_task("fashion-mnist")
            trainer = GenregTrainer(layers=[784, 64, 10], seed=0)
            trainer.fit(task.train_x, task.train_y, generations=600, progress=True)
            print(trainer.evaluate(task.test_x, task.test_y))

    Args:
        layers: Layer widths ``[in, hidden..., classes]``, at least two entries, each >= 1.
        population: Number of genomes, >= 2.
        mutation_rate: Base mutation: probability that each weight of each genome gets noise
            every generation, in [0, 1].
        child_mutation_rate: Probability that each weight of a new child gets noise, in [0, 1].
        mutation_scale: Standard deviation of the Gaussian mutation noise, > 0.
        survival_cutoff: Share of the population that survives each generation, in (0, 1);
            it must leave at least one survivor and one child.
        trust_inheritance: Share of its parent's trust a child starts with, in [0, 1].
        trust_decay: Share of trust lost every generation, in [0, 1].
        correct_reward: Trust earned per correct prediction (``fitness="accuracy"``).
        wrong_penalty: Trust earned per wrong prediction; must be < ``correct_reward``.
        samples_per_class: Training images per class shown every generation, >= 1.
        activation: Hidden activation, one of :data:`ACTIVATIONS`.
        init_scale: Initial weights are ``N(0, init_scale^2 / fan_in)``, > 0.
        elitism: Number of most trusted survivors exempt from base mutation, from 0 to the
            number of survivors.
        adaptive_mutation: ``tau`` of the self-adaptive per-genome mutation scale, >= 0; 0
            keeps ``mutation_scale`` fixed.
        fitness: ``"accuracy"`` (the seed's reward) or ``"logprob"`` (mean log-probability of
            the true class).
        mode: ``"batched"`` or ``"loop"`` (the seed's genome-by-genome style, for reference).
        seed: Seed of the trainer's random generator.
        device: Device of the population; ``None`` = CUDA when available, else CPU.

    Attributes:
        weights: Per layer, a view ``[P, in, out]`` of the population's weights in
            :attr:`theta` (row ``p`` is genome ``p``; row 0 is the best genome).
        biases: Per layer, a view ``[P, out]`` of the biases.
        trust: Current trust of every genome, ``[P]`` (children: their inherited share).
        scales: Mutation scale of every genome, ``[P]`` (all ``mutation_scale`` unless
            ``adaptive_mutation`` is on).
        generation: Generations run so far.
        n_survivors: Genomes kept each generation, ``int(survival_cutoff * population)``.
        n_params: Parameters per genome.
    """

    def __init__(
        self,
        layers: Sequence[int] = (784, 64, 10),
        population: int = 200,
        mutation_rate: float = 0.08,
        child_mutation_rate: float = 0.07,
        mutation_scale: float = 0.05,
        survival_cutoff: float = 0.2,
        trust_inheritance: float = 0.03,
        trust_decay: float = 0.2,
        correct_reward: float = 10.0,
        wrong_penalty: float = -1.5,
        samples_per_class: int = 20,
        *,
        activation: str = "tanh",
        init_scale: float = 1.0,
        elitism: int = 0,
        adaptive_mutation: float = 0.0,
        fitness: str = "accuracy",
        mode: str = "batched",
        seed: int = 0,
        device: str | torch.device | None = None,
    ) -> None:
        layers = list(layers)
        if len(layers) < 2:
            raise ValueError(f"`layers` must have at least 2 widths (in, out), got {layers!r}.")
        self.layers = [check_int(f"layers[{i}]", n, 1) for i, n in enumerate(layers)]
        self.population = check_int("population", population, 2)
        self.mutation_rate = check_probability("mutation_rate", mutation_rate)
        self.child_mutation_rate = check_probability("child_mutation_rate", child_mutation_rate)
        self.mutation_scale = check_float("mutation_scale", mutation_scale, 0, low_open=True)
        self.survival_cutoff = check_float("survival_cutoff", survival_cutoff, 0, 1, low_open=True)
        self.n_survivors = int(self.survival_cutoff * self.population + 1e-9)
        if not 1 <= self.n_survivors < self.population:
            raise ValueError(
                f"`survival_cutoff` must keep between 1 and population - 1 genomes, i.e. be in "
                f"[{1 / self.population:.4g}, {1 - 1 / self.population:.4g}] for population="
                f"{self.population}, got {survival_cutoff!r} (keeps {self.n_survivors})."
            )
        self.trust_inheritance = check_probability("trust_inheritance", trust_inheritance)
        self.trust_decay = check_probability("trust_decay", trust_decay)
        self.correct_reward = check_float("correct_reward", correct_reward)
        self.wrong_penalty = check_float("wrong_penalty", wrong_penalty)
        if not self.wrong_penalty < self.correct_reward:
            raise ValueError(
                f"`wrong_penalty` must be < `correct_reward` ({self.correct_reward}), "
                f"got {wrong_penalty!r}."
            )
        self.samples_per_class = check_int("samples_per_class", samples_per_class, 1)
        self.activation = check_choice("activation", activation, ACTIVATIONS)
        self.init_scale = check_float("init_scale", init_scale, 0, low_open=True)
        self.elitism = check_int("elitism", elitism, 0, self.n_survivors)
        self.adaptive_mutation = check_float("adaptive_mutation", adaptive_mutation, 0)
        if self.adaptive_mutation > 0 and not _MIN_SCALE <= self.mutation_scale <= _MAX_SCALE:
            # The self-adapted scales are kept in this range: a start outside it would be
            # clamped after one generation.
            raise ValueError(
                f"`mutation_scale` must be in [{_MIN_SCALE}, {_MAX_SCALE}] with adaptive_mutation "
                f"on, got {mutation_scale!r}."
            )
        self.fitness = check_choice("fitness", fitness, FITNESSES)
        self.mode = check_choice("mode", mode, MODES)
        self.seed = check_int("seed", seed, 0)
        self.device = resolve_device(device)

        self._shapes, self.n_params = _layer_shapes(self.layers)
        self.generation = 0
        self.last_correct: torch.Tensor | None = None
        """Correct predictions of every genome at the last generation, in pre-selection order."""
        self.last_rewards: torch.Tensor | None = None
        """Rewards earned at the last generation, in pre-selection order."""
        self.last_trust: torch.Tensor | None = None
        """Trust right after the last update, before selection (pre-selection order)."""
        self.last_sources: torch.Tensor | None = None
        """For every slot of the current population, the pre-selection index it was copied
        from (survivors first, then children)."""
        self.last_batch_size = 0
        self._pools: tuple[Any, ...] | None = None
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(self.seed)
        with torch.inference_mode():
            theta = torch.zeros(self.population, self.n_params, device=self.device)
            self._set_theta(theta)
            for w in self.weights:
                std = self.init_scale / math.sqrt(w.shape[1])
                w.copy_(torch.randn(w.shape, generator=self._generator, device=self.device) * std)
            self.trust = torch.zeros(self.population, device=self.device)
            self.scales = torch.full((self.population,), self.mutation_scale, device=self.device)

    # -- state ----------------------------------------------------------------------------

    @property
    def theta(self) -> torch.Tensor:
        """All parameters, ``[population, n_params]`` (layer by layer: weights, then bias)."""
        return self._theta

    def _set_theta(self, theta: torch.Tensor) -> None:
        self._theta = theta
        self.weights, self.biases = _layer_views(theta, self._shapes)

    def set_population(
        self, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor]
    ) -> None:
        """Overwrite every genome's parameters (e.g. to start from known networks).

        Args:
            weights: Per layer ``[P, in, out]``.
            biases: Per layer ``[P, out]``.
        """
        if len(weights) != len(self.weights) or len(biases) != len(self.biases):
            raise ValueError(f"expected {len(self.weights)} weight and bias tensors.")
        with torch.inference_mode():
            for dst, src in zip(self.weights + self.biases, list(weights) + list(biases)):
                if tuple(src.shape) != tuple(dst.shape):
                    raise ValueError(f"shape {tuple(src.shape)} != expected {tuple(dst.shape)}.")
                dst.copy_(src)

    @property
    def best_index(self) -> int:
        """Row of the best genome: the survivor ranked first at the last evaluation (0)."""
        return 0

    def best_genome(self) -> Genome:
        """A copy of the best genome with :meth:`config` (plus the generation) as config."""
        p = self.best_index
        with torch.inference_mode():
            weights = [w[p].clone() for w in self.weights]
            biases = [b[p].clone() for b in self.biases]
        config = self.config()
        config["generation"] = self.generation
        return Genome(weights, biases, self.activation, config)

    def config(self) -> dict[str, Any]:
        """The constructor arguments as a JSON-serialisable dict (device excluded)."""
        return {
            "layers": list(self.layers),
            "population": self.population,
            "mutation_rate": self.mutation_rate,
            "child_mutation_rate": self.child_mutation_rate,
            "mutation_scale": self.mutation_scale,
            "survival_cutoff": self.survival_cutoff,
            "trust_inheritance": self.trust_inheritance,
            "trust_decay": self.trust_decay,
            "correct_reward": self.correct_reward,
            "wrong_penalty": self.wrong_penalty,
            "samples_per_class": self.samples_per_class,
            "activation": self.activation,
            "init_scale": self.init_scale,
            "elitism": self.elitism,
            "adaptive_mutation": self.adaptive_mutation,
            "fitness": self.fitness,
            "mode": self.mode,
            "seed": self.seed,
        }

    def state_dict(self) -> dict[str, Any]:
        """Everything a run needs to go on exactly as if it had never stopped.

        :func:`~optuna_evo.genreg.save_trainer` writes it to a file; :meth:`load_state_dict`
        puts it back into a trainer of the same :meth:`config`.

        Returns:
            ``config`` (:meth:`config`), ``generation``, ``last_batch_size``, ``rng_device``
            (the device type whose generator made ``rng_state``) and ``tensors``: CPU copies of
            the population (``theta``), ``trust``, ``scales``, the random generator's state
            (``rng_state``) and, once a generation has run, the diagnostics :meth:`stats`
            reads (``last_correct``, ``last_rewards``, ``last_trust``, ``last_sources``).
        """
        tensors = {
            "theta": self._theta,
            "trust": self.trust,
            "scales": self.scales,
            "rng_state": self._generator.get_state(),
        }
        for name in _LAST_TENSORS:
            value = getattr(self, name)
            if value is not None:
                tensors[name] = value
        return {
            "config": self.config(),
            "generation": self.generation,
            "last_batch_size": self.last_batch_size,
            "rng_device": self.device.type,
            # Fresh, contiguous CPU copies: normal tensors even where the originals are
            # inference tensors, and unaffected by the run going on.
            "tensors": {
                k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`'s output (of a trainer with the same config).

        On a device of the same type the run goes on bit for bit as the saved one would have
        (same device model and software: GPU models may differ in their arithmetic). The
        random stream of one device type cannot be carried to another (CPU and CUDA generators
        differ), so there it is reseeded from the seed and the generation, with a warning: the
        continuation is reproducible but differs. The state is copied, never shared.

        Raises:
            ValueError: If the state belongs to another configuration (the message names the
                differing arguments), its tensors do not fit this trainer or are of another
                float dtype. Nothing is changed then.
        """
        config = state.get("config")
        if not isinstance(config, dict):
            raise ValueError("state has no 'config' dict: not a GenregTrainer state.")
        mine = self.config()
        differing = sorted(k for k in set(mine) | set(config) if mine.get(k) != config.get(k))
        if differing:
            shown = ", ".join(f"{k}={config.get(k)!r} (here {mine.get(k)!r})" for k in differing)
            raise ValueError(f"state is of another GenregTrainer configuration: {shown}.")
        generation = check_int("state['generation']", state.get("generation"), 0)
        batch_size = check_int("state['last_batch_size']", state.get("last_batch_size", 0), 0)
        tensors = state.get("tensors")
        if not isinstance(tensors, dict):
            raise ValueError("state has no 'tensors' dict: not a GenregTrainer state.")
        p = self.population
        shapes = {
            "theta": (p, self.n_params),
            "trust": (p,),
            "scales": (p,),
            **dict.fromkeys(_LAST_TENSORS, (p,)),
        }
        for name, shape in shapes.items():
            value = tensors.get(name)
            if value is None and name in _LAST_TENSORS:  # none before the first generation
                continue
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                got = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value)
                raise ValueError(f"state tensor {name!r} must have shape {shape}, got {got}.")
        dtype = self._theta.dtype
        if tensors["theta"].dtype != dtype:
            raise ValueError(
                f"state's population is {tensors['theta'].dtype}, this trainer computes in "
                f"{dtype} (torch's default dtype when it was built): set that first with "
                f"torch.set_default_dtype."
            )
        rng_state = tensors.get("rng_state")
        if not isinstance(rng_state, torch.Tensor) or rng_state.dtype != torch.uint8:
            raise ValueError("state tensor 'rng_state' is missing or not a uint8 tensor.")
        same_type = state.get("rng_device") == self.device.type
        state_size = self._generator.get_state().numel()
        if same_type and rng_state.numel() != state_size:
            raise ValueError(
                f"state tensor 'rng_state' has {rng_state.numel()} bytes, a "
                f"{self.device.type} generator's state {state_size}."
            )

        # Everything is checked: from here on nothing fails halfway. Copies, so that the
        # trainer never shares its population with the state it was given.
        with torch.inference_mode():
            self._set_theta(tensors["theta"].to(self.device, dtype, copy=True).contiguous())
            self.trust = tensors["trust"].to(self.device, dtype, copy=True)
            self.scales = tensors["scales"].to(self.device, dtype, copy=True)
        for name in _LAST_TENSORS:
            value = tensors.get(name)
            setattr(self, name, None if value is None else value.to(self.device, copy=True))
        self.generation = generation
        self.last_batch_size = batch_size
        if same_type:
            self._generator.set_state(rng_state.cpu())
        else:
            # A stream of its own per (seed, generation), so a resumed run is reproducible.
            self._generator.manual_seed((self.seed * 1_000_003 + generation) % 2**63)
            _logger.warning(
                f"GenregTrainer: the saved random state is of device type "
                f"{state.get('rng_device')!r}, this trainer runs on {self.device.type!r}; the "
                f"random stream is reseeded, so the run goes on differently from the saved one."
            )

    def stats(self) -> dict[str, float]:
        """Summary of the last generation (synchronises with the device).

        Returns:
            ``generation``; ``best_trust`` and ``mean_trust`` before selection;
            ``best_batch_accuracy`` (the best genome's accuracy on the generation's sample) and
            ``mean_batch_accuracy``; ``mean_scale`` (mean mutation scale).
        """
        if self.last_trust is None or self.last_correct is None or self.last_sources is None:
            return {"generation": float(self.generation)}
        best = int(self.last_sources[0])
        n = max(self.last_batch_size, 1)
        return {
            "generation": float(self.generation),
            "best_trust": float(self.last_trust[best]),
            "mean_trust": float(self.last_trust.mean()),
            "best_batch_accuracy": float(self.last_correct[best]) / n,
            "mean_batch_accuracy": float(self.last_correct.double().mean()) / n,
            "mean_scale": float(self.scales.mean()),
        }

    # -- evaluation -----------------------------------------------------------------------

    def population_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``[P, B, C]`` of every genome on ``x`` (batched or looped per ``mode``)."""
        x = self._flat(x)
        run = evaluate_batched if self.mode == "batched" else evaluate_loop
        return run(self.weights, self.biases, x, self.activation)

    def evaluate(self, x: torch.Tensor, y: torch.Tensor) -> float:
        """Accuracy of the best genome on ``(x, y)`` (e.g. the validation or test split)."""
        return self.best_genome().accuracy(self._flat(x), y)

    def evaluate_population(
        self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024
    ) -> torch.Tensor:
        """Accuracy of every genome on ``(x, y)``, ``[P]``, evaluated in batches of samples."""
        x = self._flat(x)
        y = y.to(self.device)
        with torch.inference_mode():
            hits = torch.zeros(self.population, device=self.device)
            for i in range(0, len(x), batch_size):
                logits = self.population_logits(x[i : i + batch_size])
                hits += (logits.argmax(-1) == y[i : i + batch_size]).sum(1)
            return hits / max(len(x), 1)

    def per_class_accuracy(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(accuracy, count)`` per class of the best genome, see :func:`per_class_accuracy`."""
        return self.best_genome().per_class_accuracy(self._flat(x), y, self.layers[-1])

    def _flat(self, x: torch.Tensor) -> torch.Tensor:
        # Any input dtype (uint8 pixels, float64 arrays) in the population's float dtype.
        x = x.reshape(len(x), -1).to(self.device, self.theta.dtype)
        if x.shape[1] != self.layers[0]:
            raise ValueError(f"inputs have {x.shape[1]} features, layers[0] is {self.layers[0]}.")
        return x

    # -- evolution ------------------------------------------------------------------------

    def fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        generations: int,
        *,
        progress: bool = False,
        log_every: int = 0,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_every: int = 100,
    ) -> GenregTrainer:
        """Evolve for ``generations`` generations on the training data ``(x, y)``.

        Call it again to continue (the population, trust and random stream carry on).

        Args:
            x: Training inputs ``[N, ...]`` (flattened to ``[N, layers[0]]``) on any device.
            y: Training labels ``[N]`` in ``[0, layers[-1])``.
            generations: Number of generations, >= 0.
            progress: Show a tqdm progress bar.
            log_every: Log :meth:`stats` every this many generations (0 = never).
            checkpoint: File that keeps the trainer's whole state
                (:func:`~optuna_evo.genreg.save_trainer`), written whenever
                :attr:`generation` is a multiple of ``checkpoint_every`` and when the call
                returns; a crash loses at most ``checkpoint_every`` generations, and
                ``load_trainer(checkpoint).fit(...)`` goes on exactly where it was saved.
            checkpoint_every: Generations between two checkpoints, >= 1 (each one copies the
                population to the CPU and writes it).

        Returns:
            ``self``.
        """
        generations = check_int("generations", generations, 0)
        log_every = check_int("log_every", log_every, 0)
        checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
        # Imported here: the checkpoint module builds on this one.
        from optuna_evo.genreg.checkpoint import save_trainer

        pools = self._class_pools(x, y)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=generations, desc="GENREG", unit="gen")
        start = time.perf_counter()
        refresh = max(1, generations // 20)  # each postfix update synchronises the device
        try:
            for k in range(generations):
                self._step(*pools)
                if bar is not None:
                    bar.update(1)
                    if (k + 1) % refresh == 0 or k + 1 == generations:
                        s = self.stats()
                        bar.set_postfix(
                            acc=f"{s['best_batch_accuracy']:.3f}", trust=f"{s['best_trust']:.1f}"
                        )
                if log_every and self.generation % log_every == 0:
                    s = self.stats()
                    _logger.info(
                        f"GENREG generation {self.generation}: best trust {s['best_trust']:.2f}, "
                        f"best batch accuracy {s['best_batch_accuracy']:.3f}, "
                        f"mean {s['mean_batch_accuracy']:.3f}."
                    )
                # Counted from generation 0, so a resumed run saves at the same points.
                if checkpoint is not None and self.generation % checkpoint_every == 0:
                    save_trainer(checkpoint, self)
        finally:
            if bar is not None:
                bar.close()
        if checkpoint is not None and (generations == 0 or self.generation % checkpoint_every):
            save_trainer(checkpoint, self)
        if generations:
            elapsed = time.perf_counter() - start
            _logger.debug(
                f"GENREG: {generations} generations in {elapsed:.2f}s "
                f"({generations / max(elapsed, 1e-9):.1f}/s) on {self.device}."
            )
        return self

    def _class_pools(self, x: torch.Tensor, y: torch.Tensor) -> tuple[Any, ...]:
        # Cache per data tensors: sorting labels once, not every fit() call.
        key = (x.data_ptr(), y.data_ptr(), tuple(x.shape), tuple(y.shape), str(x.device))
        if self._pools is not None and self._pools[0] == key:
            return self._pools[1]
        xf = self._flat(x)
        with torch.inference_mode():
            yd = y.to(self.device).long()
            if len(yd) != len(xf) or len(yd) == 0:
                raise ValueError(
                    f"x and y must be non-empty and equally long ({len(xf)}, {len(yd)})."
                )
            if int(yd.min()) < 0 or int(yd.max()) >= self.layers[-1]:
                raise ValueError(f"labels must be in [0, {self.layers[-1]}) for layers[-1].")
            order = torch.argsort(yd, stable=True)
            counts = torch.bincount(yd, minlength=self.layers[-1])
            starts = torch.cumsum(counts, 0) - counts
            present = counts > 0
            pools = (xf, yd, order, starts[present], counts[present])
        self._pools = (key, pools)
        return pools

    def _sample(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        order: torch.Tensor,
        starts: torch.Tensor,
        counts: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.rand(
            len(counts), self.samples_per_class, generator=self._generator, device=self.device
        )
        within = (u * counts[:, None]).long().minimum(counts[:, None] - 1)
        idx = order[(starts[:, None] + within).reshape(-1)]
        return x[idx], y[idx]

    def _step(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        order: torch.Tensor,
        starts: torch.Tensor,
        counts: torch.Tensor,
    ) -> None:
        with torch.inference_mode():
            xb, yb = self._sample(x, y, order, starts, counts)
            logits = self.population_logits(xb)
            correct = (logits.argmax(-1) == yb).sum(1)
            n = yb.numel()
            if self.fitness == "accuracy":
                rewards = correct * self.correct_reward + (n - correct) * self.wrong_penalty
            else:
                logp = torch.log_softmax(logits, -1)
                rewards = logp.gather(-1, yb.expand(self.population, n).unsqueeze(-1)).mean((1, 2))
            trust = self.trust * (1.0 - self.trust_decay) + rewards
            self.last_correct, self.last_rewards, self.last_trust = correct, rewards, trust
            self.last_batch_size = n

            # Survival: the most trusted genomes keep their place (and trust), best first.
            ranking = torch.argsort(trust, descending=True, stable=True)
            survivors = ranking[: self.n_survivors]
            n_children = self.population - self.n_survivors
            # Parents drawn with probability proportional to shifted (positive) trust.
            shifted = trust[survivors] - trust.min()
            weights = shifted + 1e-6 * (1.0 + shifted.max())
            draws = torch.multinomial(weights, n_children, True, generator=self._generator)
            parents = survivors[draws]
            sources = torch.cat([survivors, parents])
            self.last_sources = sources
            self.trust = torch.cat([trust[survivors], self.trust_inheritance * trust[parents]])
            self.scales = self.scales[sources]
            if self.adaptive_mutation > 0:
                noise = torch.randn(n_children, generator=self._generator, device=self.device)
                self.scales[self.n_survivors :] *= torch.exp(self.adaptive_mutation * noise)
                self.scales.clamp_(_MIN_SCALE, _MAX_SCALE)

            if self.mode == "batched":
                self._set_theta(self._theta.index_select(0, sources))
                self._mutate_rows(self.n_survivors, self.child_mutation_rate)
                self._mutate_rows(self.elitism, self.mutation_rate)
            else:
                self._loop_reproduce(sources)
            self.generation += 1

    def _mutate_rows(self, first: int, rate: float) -> None:
        """Add ``N(0, scale^2)`` noise to a Bernoulli(``rate``) mask of rows ``first..P-1``."""
        rows = self.population - first
        if rate <= 0.0 or rows == 0:
            return
        block = self._theta[first:]  # contiguous rows
        adaptive = self.adaptive_mutation > 0
        if rate >= 0.25:  # dense mask: sparse sampling stops paying off
            noise = torch.randn(block.shape, generator=self._generator, device=self.device)
            mask = torch.rand(block.shape, generator=self._generator, device=self.device) < rate
            noise *= self.scales[first:, None] if adaptive else self.mutation_scale
            block += noise.mul_(mask)
            return
        positions, valid = self._mask_positions(rows * self.n_params, rate)
        noise = torch.randn(len(positions), generator=self._generator, device=self.device)
        noise *= valid  # padding positions get exactly zero noise
        if adaptive:
            rows_of = torch.div(positions, self.n_params, rounding_mode="floor")
            noise *= self.scales[first + rows_of]
        else:
            noise *= self.mutation_scale
        # Valid positions are distinct; padding adds exact zeros, so the order of the additions
        # cannot change the result (deterministic on the GPU too).
        block.view(-1).index_add_(0, positions, noise)

    def _mask_positions(self, n: int, rate: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions of a Bernoulli(``rate``) mask over ``[0, n)``, without the mask.

        The gaps between successive successes of a Bernoulli process are geometric, so the
        cumulative sums of geometric draws are the positions ``rand(n) < rate`` would select,
        in ``O(rate * n)`` random numbers. The result has a fixed length (no data-dependent
        shape, hence no GPU synchronisation): ``positions`` clamped to ``n - 1`` and ``valid``
        marking the real ones. Enough gaps are drawn to cover ``[0, n)`` except with
        probability below 1e-14; on the CPU, where checking is free, coverage is guaranteed.
        """
        mean = n * rate
        k = int(mean + 8.0 * math.sqrt(mean) + 64)
        parts: list[torch.Tensor] = []
        end = torch.zeros((), dtype=torch.long, device=self.device)
        while True:
            gaps = torch.empty(k, device=self.device).geometric_(rate, generator=self._generator)
            cums = gaps.long().cumsum(0) + end
            parts.append(cums)
            end = cums[-1]
            if self.device.type != "cpu" or int(end) > n:
                break
        positions = torch.cat(parts) - 1 if len(parts) > 1 else parts[0] - 1
        valid = positions < n
        return positions.clamp_(max=n - 1), valid

    def _loop_reproduce(self, sources: torch.Tensor) -> None:
        """The seed's style: copy and mutate genome by genome, with dense masks."""
        theta = torch.empty_like(self._theta)
        weights, biases = _layer_views(theta, self._shapes)
        for slot, src in enumerate(sources.tolist()):
            for dst, old in zip(weights + biases, self.weights + self.biases):
                dst[slot].copy_(old[src])
        self._set_theta(theta)
        for slot in range(self.population):
            rates = [self.child_mutation_rate] if slot >= self.n_survivors else []
            if slot >= self.elitism:
                rates.append(self.mutation_rate)
            scale = float(self.scales[slot])
            for rate in rates:
                if rate <= 0.0:
                    continue
                for tensor in self.weights + self.biases:
                    row = tensor[slot]
                    mask = torch.rand(row.shape, generator=self._generator, device=self.device)
                    noise = torch.randn(row.shape, generator=self._generator, device=self.device)
                    row += noise.mul_(scale).mul_(mask < rate)


def _layer_shapes(layers: Sequence[int]) -> tuple[list[tuple[int, int]], int]:
    """The ``(in, out)`` shape of every layer and the parameters per genome (weights, biases)."""
    shapes = list(zip(layers[:-1], layers[1:]))
    return shapes, sum(i * o + o for i, o in shapes)


def _layer_views(
    theta: torch.Tensor, shapes: Sequence[tuple[int, int]]
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-layer weight views ``[P, in, out]`` and bias views ``[P, out]`` into ``theta``."""
    weights: list[torch.Tensor] = []
    biases: list[torch.Tensor] = []
    offset = 0
    for i, o in shapes:
        weights.append(theta[:, offset : offset + i * o].view(-1, i, o))
        offset += i * o
        biases.append(theta[:, offset : offset + o])
        offset += o
    return weights, biases
