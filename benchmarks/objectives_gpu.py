"""GPU benchmark of :mod:`optuna_evo.objectives`: our training loop against the usual one.

Measures, in one run on one device:

1. The seed CNN (pytorch/examples' MNIST ``Net``) on FashionMNIST, batch 64: seconds per epoch
   and test accuracy after every epoch for :func:`optuna_evo.objectives.train` (device-resident
   data, bf16 autocast, optionally ``torch.compile``) and for a pytorch/examples-style loop
   (torchvision transforms per sample, ``DataLoader``, fp32, ``.item()`` logging), same model,
   optimizer and training split. Goals: >= 25x faster per epoch; >= 91 % test accuracy within
   5 s of training.
2. nanoGPT's baby GPT on tiny shakespeare (6 layers, 6 heads, 384 wide, block 256, dropout
   0.2, nanoGPT's ``shakespeare_char`` optimizer settings): wall time until the validation loss
   reaches 1.47 (including compilation and evaluations) and training tokens per second.

Writes a markdown report naming the device and date to ``--out``. ``--quick`` shrinks every
size so the script runs end-to-end on a CPU in about a minute (a smoke test for CI; its figures
mean nothing). Without local data, ``--quick`` falls back to synthetic stand-ins.

Usage::

    python benchmarks/objectives_gpu.py                      # full run on the GPU
    python benchmarks/objectives_gpu.py --quick --out /tmp/objectives_gpu.md
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
import datetime
from pathlib import Path
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # Run from a plain checkout.

import numpy as np  # noqa: E402
import optuna  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from benchmarks._common import report_header  # noqa: E402
from benchmarks._common import save_report  # noqa: E402
from optuna_evo.objectives.data import ClassificationSplits  # noqa: E402
from optuna_evo.objectives.data import DataNotFoundError  # noqa: E402
from optuna_evo.objectives.data import TextSplits  # noqa: E402
from optuna_evo.objectives.data import load_fashion_mnist  # noqa: E402
from optuna_evo.objectives.data import load_tiny_shakespeare  # noqa: E402
from optuna_evo.objectives.data import make_text_splits  # noqa: E402
from optuna_evo.objectives.models import CharTransformer  # noqa: E402
from optuna_evo.objectives.models import CharTransformerConfig  # noqa: E402
from optuna_evo.objectives.models import SeedCNN  # noqa: E402
from optuna_evo.objectives.train import TrainConfig  # noqa: E402
from optuna_evo.objectives.train import TrainingFailed  # noqa: E402
from optuna_evo.objectives.train import make_optimizer  # noqa: E402
from optuna_evo.objectives.train import release_memory  # noqa: E402
from optuna_evo.objectives.train import set_seed  # noqa: E402
from optuna_evo.objectives.train import train  # noqa: E402

FASHION_MEAN, FASHION_STD = 0.2860, 0.3530
CNN_ACC_GOAL, CNN_TIME_GOAL_S, CNN_SPEEDUP_GOAL = 0.91, 5.0, 25.0


@dataclass
class LoopRun:
    """Per-epoch figures of one CNN training loop."""

    name: str
    epoch_s: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def steady_epoch_s(self) -> float:
        """Median epoch time without the first epoch (warm-up / compilation)."""
        rest = self.epoch_s[1:] or self.epoch_s
        return statistics.median(rest)

    def time_to_accuracy(self, goal: float) -> tuple[int, float] | None:
        """First epoch reaching ``goal`` and the cumulative training seconds until then."""
        total = 0.0
        for epoch, (seconds, acc) in enumerate(zip(self.epoch_s, self.test_acc), start=1):
            total += seconds
            if acc >= goal:
                return epoch, total
        return None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes: a CPU smoke test")
    p.add_argument("--out", default="benchmarks/results/objectives_gpu.md", help="report path")
    p.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    p.add_argument("--data-dir", default=None, help="FashionMNIST idx directory")
    p.add_argument("--text-path", default=None, help="tiny shakespeare input.txt")
    p.add_argument("--cnn-epochs", type=int, default=None, help="our loop's epochs (10)")
    p.add_argument("--baseline-epochs", type=int, default=None, help="examples loop (2)")
    p.add_argument("--cnn-optimizer", default="adam", choices=("sgd", "adam", "adamw"))
    p.add_argument("--cnn-lr", type=float, default=1e-3)
    p.add_argument("--cnn-momentum", type=float, default=0.0)
    p.add_argument("--lm-max-steps", type=int, default=None, help="baby GPT steps (5000)")
    p.add_argument("--lm-target", type=float, default=1.47, help="validation loss target")
    p.add_argument("--no-compile", action="store_true", help="never torch.compile")
    p.add_argument(
        "--cnn-compile-modes",
        default="default,reduce-overhead",
        help="comma-separated torch.compile modes tried for our CNN loop (CUDA only)",
    )
    p.add_argument("--lm-compile-mode", default="default", help="torch.compile mode of CharLM")
    p.add_argument("--skip-cnn", action="store_true")
    p.add_argument("--skip-lm", action="store_true")
    return p.parse_args(argv)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --- data ---------------------------------------------------------------------------------


def _synthetic_images(n_train: int, n_test: int, device: torch.device) -> ClassificationSplits:
    """28x28 uint8-valued stand-in for FashionMNIST (quick mode without the files)."""
    g = torch.Generator().manual_seed(0)
    templates = torch.rand(10, 1, 28, 28, generator=g)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=g)
        pixels = (templates[y] * 200 + torch.rand(n, 1, 28, 28, generator=g) * 55).round()
        x = (pixels / 255 - FASHION_MEAN) / FASHION_STD
        return x.to(device), y.to(device)

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return ClassificationSplits(
        train_x, train_y, test_x, test_y, test_x, test_y, 10, "synthetic-images", "synthetic"
    )


def load_cnn_data(
    args: argparse.Namespace, device: torch.device
) -> tuple[ClassificationSplits, str]:
    """The 50k training split and the test set (as validation, for per-epoch test accuracy)."""
    max_train = 1024 if args.quick else None
    max_test = 512 if args.quick else None
    try:
        data = load_fashion_mnist(args.data_dir, device, max_train=max_train, max_test=max_test)
        source = f"FashionMNIST from `{data.source}`"
    except DataNotFoundError:
        if not args.quick:
            raise
        data = _synthetic_images(max_train or 1024, max_test or 512, device)
        source = "synthetic 28x28 images (FashionMNIST not found)"
    # Validation := test set, so the per-epoch evaluation of train() is the test accuracy.
    splits = ClassificationSplits(
        data.train_x,
        data.train_y,
        data.test_x,
        data.test_y,
        data.test_x[:0],
        data.test_y[:0],
        data.n_classes,
        data.name,
        data.source,
    )
    return splits, f"{source}; {len(splits.train_y):,} train / {len(splits.val_y):,} test"


def load_lm_data(args: argparse.Namespace, device: torch.device) -> tuple[TextSplits, str]:
    """Tiny shakespeare (90 / 10), or a synthetic text in quick mode without the file."""
    try:
        data = load_tiny_shakespeare(args.text_path, device)
        source = f"tiny shakespeare from `{data.source}`"
    except DataNotFoundError:
        if not args.quick:
            raise
        rng = np.random.default_rng(0)
        words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis"]
        text = " ".join(rng.choice(words, 20_000).tolist())
        data = make_text_splits(text, device, name="synthetic-text")
        source = "synthetic text (tiny shakespeare not found)"
    return data, f"{source}; {len(data.train):,} train / {len(data.val):,} val characters"


# --- seed CNN -----------------------------------------------------------------------------


def cnn_config(args: argparse.Namespace, device: torch.device, epochs: int) -> TrainConfig:
    """Optimizer and schedule shared by both CNN loops."""
    return TrainConfig(
        optimizer=args.cnn_optimizer,
        lr=args.cnn_lr,
        momentum=args.cnn_momentum,
        batch_size=64,
        epochs=epochs,
        scheduler="step",
        step_gamma=0.7,
        eval_batch_size=2000,  # Divides 10k: one shape for the compiled model.
        seed=0,
        device=device,
    )


def run_cnn_ours(
    data: ClassificationSplits,
    args: argparse.Namespace,
    device: torch.device,
    epochs: int,
    compile_mode: str | None,
) -> LoopRun:
    """Our loop: one :func:`train` call, evaluating the test set after every epoch.

    ``compile_mode`` ``None`` runs eagerly; ``"default"`` or another mode compiles the model.
    """
    config = cnn_config(args, device, epochs)
    if compile_mode is not None:
        config.compile = True if compile_mode == "default" else compile_mode
    set_seed(0)
    model = SeedCNN()
    result = train(model, data, config)
    suffix = "eager" if compile_mode is None else f"compile ({compile_mode})"
    run = LoopRun(f"optuna-evo `train()`, {suffix}")
    previous = 0.0
    for record in result.history:
        run.epoch_s.append(record.train_s - previous)
        run.test_acc.append(float(record.val_accuracy or 0.0))
        previous = record.train_s
    amp = device.type == "cuda"
    run.note = f"device-resident data, {'bf16 autocast' if amp else 'fp32'}"
    return run


class _ExamplesDataset(torch.utils.data.Dataset):
    """torchvision's MNIST ``__getitem__``: uint8 array -> PIL image -> transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray) -> None:
        from torchvision import transforms

        self.images, self.labels = images, labels
        self.transform = transforms.Compose(
            [transforms.ToTensor(), transforms.Normalize((FASHION_MEAN,), (FASHION_STD,))]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        img = Image.fromarray(self.images[index])  # 2-D uint8: mode "L"
        return self.transform(img), int(self.labels[index])


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.squeeze(1).float().cpu() * FASHION_STD + FASHION_MEAN) * 255).round().byte().numpy()


def run_cnn_examples(
    data: ClassificationSplits, args: argparse.Namespace, device: torch.device, epochs: int
) -> LoopRun:
    """pytorch/examples ``mnist/main.py``'s loop with the same model, optimizer and data."""
    train_set = _ExamplesDataset(_to_uint8(data.train_x), data.train_y.cpu().numpy())
    test_set = _ExamplesDataset(_to_uint8(data.val_x), data.val_y.cpu().numpy())
    cuda_kwargs: dict[str, Any] = (
        {"num_workers": 1, "pin_memory": True} if device.type == "cuda" else {}
    )
    train_loader = torch.utils.data.DataLoader(
        train_set, batch_size=64, shuffle=True, **cuda_kwargs
    )
    test_loader = torch.utils.data.DataLoader(test_set, batch_size=1000, **cuda_kwargs)
    config = cnn_config(args, device, epochs)
    set_seed(0)
    model = SeedCNN().to(device)
    optimizer = make_optimizer(model, config)  # Same optimizer, non-fused as in the examples.
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.7)
    run = LoopRun("pytorch/examples-style `DataLoader`", note="per-sample transforms, fp32")
    for _ in range(epochs):
        model.train()
        _sync(device)
        t0 = time.perf_counter()
        for batch_idx, (x, y) in enumerate(train_loader):
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
            if batch_idx % 10 == 0:  # The examples log every 10 batches.
                loss.item()
        _sync(device)
        run.epoch_s.append(time.perf_counter() - t0)
        scheduler.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, y in test_loader:
                x, y = x.to(device), y.to(device)
                correct += (model(x).argmax(dim=1) == y).sum().item()
        run.test_acc.append(correct / len(test_set))
    return run


# --- CharLM -------------------------------------------------------------------------------


def run_char_lm(
    data: TextSplits, args: argparse.Namespace, device: torch.device
) -> tuple[dict[str, Any], Any]:
    """nanoGPT's baby GPT (or a tiny one in quick mode) until the target validation loss."""
    if args.quick:
        model_cfg = CharTransformerConfig(
            vocab_size=data.vocab_size, block_size=64, n_layer=2, n_head=2, n_embd=64, dropout=0.0
        )
        batch, steps, interval, iters = 16, args.lm_max_steps or 60, 20, 5
    else:
        model_cfg = CharTransformerConfig(
            vocab_size=data.vocab_size, block_size=256, n_layer=6, n_head=6, n_embd=384
        )
        batch, steps, interval, iters = 64, args.lm_max_steps or 5000, 250, 200
    compile_model = device.type == "cuda" and not args.no_compile
    mode = args.lm_compile_mode
    config = TrainConfig(
        optimizer="adamw",
        lr=1e-3,
        betas=(0.9, 0.99),
        weight_decay=0.1,
        batch_size=batch,
        max_steps=steps,
        eval_interval=interval,
        eval_iters=iters,
        scheduler="cosine",
        warmup_steps=min(100, steps // 10),
        min_lr_ratio=0.1,
        grad_clip=1.0,
        seed=0,
        device=device,
        compile=(True if mode == "default" else mode) if compile_model else False,
        stop_at_val_loss=args.lm_target,
    )
    compiled = mode if compile_model else "no"
    set_seed(0)
    try:
        result = train(CharTransformer(model_cfg), data, config)
    except Exception as e:
        if not config.compile or isinstance(e, TrainingFailed):
            raise
        # A compiler problem on the image must not cost the section: measure eagerly instead.
        print(f"charlm with torch.compile failed ({e!r}); running eagerly", flush=True)
        release_memory(device)
        compiled = f"no (compile mode {mode!r} failed: {type(e).__name__})"
        config = replace(config, compile=False)
        set_seed(0)
        result = train(CharTransformer(model_cfg), data, config)
    reached = next((r for r in result.history if r.val_loss <= args.lm_target), None)
    summary = {
        "config": model_cfg,
        "compile": compiled,
        "batch": batch,
        "steps": result.steps,
        "best_val_loss": result.best_val_loss,
        "reached": reached,
        "train_seconds": result.train_seconds,
        "train_only_seconds": result.train_only_seconds,
        "tokens_per_s": result.tokens_per_s,
        "n_params": result.n_params,
    }
    return summary, result.history


# --- report -------------------------------------------------------------------------------


def _fmt_time_to(run: LoopRun, goal: float) -> str:
    hit = run.time_to_accuracy(goal)
    if hit is None:
        return f"not reached (best {max(run.test_acc, default=0.0):.2%})"
    return f"{hit[1]:.2f} s (epoch {hit[0]})"


def cnn_section(
    runs: list[LoopRun],
    baseline: LoopRun | None,
    args: argparse.Namespace,
    failures: list[str],
) -> str:
    """Markdown for the CNN comparison."""
    lines = [
        "## Seed CNN on FashionMNIST",
        "",
        f"SeedCNN (1,199,882 parameters), batch 64, {args.cnn_optimizer} lr {args.cnn_lr:g}"
        f"{f', momentum {args.cnn_momentum:g}' if args.cnn_optimizer == 'sgd' else ''}, "
        "StepLR gamma 0.7 per epoch. Epoch times exclude the test evaluation; the first epoch "
        "includes warm-up and compilation.",
        "",
        "| loop | epochs | first epoch (s) | steady epoch (s) | speedup vs examples | "
        f"best test acc | time to {CNN_ACC_GOAL:.0%} test acc | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in [*runs, *([baseline] if baseline else [])]:
        speedup_cell = (
            f"{baseline.steady_epoch_s / run.steady_epoch_s:.1f}x"
            if baseline and run is not baseline
            else "1.0x"
            if baseline
            else "n/a"
        )
        lines.append(
            f"| {run.name} | {len(run.epoch_s)} | {run.epoch_s[0]:.3f} | "
            f"{run.steady_epoch_s:.3f} | {speedup_cell} | {max(run.test_acc):.2%} | "
            f"{_fmt_time_to(run, CNN_ACC_GOAL)} | {run.note} |"
        )
    lines += ["", "Per epoch (seconds / test accuracy):", ""]
    all_runs = [*runs, *([baseline] if baseline else [])]
    lines.append("| epoch | " + " | ".join(r.name for r in all_runs) + " |")
    lines.append("|---:|" + "---:|" * len(all_runs))
    for epoch in range(max(len(r.epoch_s) for r in all_runs)):
        cells = [
            f"{r.epoch_s[epoch]:.3f} s / {r.test_acc[epoch]:.2%}" if epoch < len(r.epoch_s) else ""
            for r in all_runs
        ]
        lines.append(f"| {epoch + 1} | " + " | ".join(cells) + " |")
    if baseline and runs:
        best = min(runs, key=lambda r: r.steady_epoch_s)
        speedup = baseline.steady_epoch_s / best.steady_epoch_s
        fast = [r.time_to_accuracy(CNN_ACC_GOAL) for r in runs]
        times = [hit[1] for hit in fast if hit is not None]
        acc_ok = bool(times) and min(times) <= CNN_TIME_GOAL_S
        lines += [
            "",
            f"- Goal >= {CNN_SPEEDUP_GOAL:.0f}x faster per epoch: "
            f"**{'met' if speedup >= CNN_SPEEDUP_GOAL else 'not met'}** ({speedup:.1f}x, "
            f"{best.name}).",
            f"- Goal >= {CNN_ACC_GOAL:.0%} test accuracy within {CNN_TIME_GOAL_S:.0f} s of "
            f"training: **{'met' if acc_ok else 'not met'}**"
            + (f" ({min(times):.2f} s)." if times else "."),
        ]
    lines += [f"- Failed: {failure}" for failure in failures]
    return "\n".join(lines)


def lm_section(summary: dict[str, Any], history: Any, args: argparse.Namespace) -> str:
    """Markdown for the CharLM run."""
    cfg: CharTransformerConfig = summary["config"]
    reached = summary["reached"]
    to_target = (
        f"{reached.elapsed_s:.1f} s (step {reached.step}; {reached.train_s:.1f} s training only)"
        if reached
        else f"not reached in {summary['steps']} steps"
    )
    lines = [
        "## CharLM (nanoGPT baby GPT) on tiny shakespeare",
        "",
        f"{cfg.n_layer} layers, {cfg.n_head} heads, {cfg.n_embd} wide, block {cfg.block_size}, "
        f"dropout {cfg.dropout:g}, {summary['n_params']:,} parameters; batch {summary['batch']}, "
        "AdamW lr 1e-3 (betas 0.9/0.99, weight decay 0.1), warmup + cosine to 1e-4, grad clip "
        f"1.0, compile: {summary['compile']}. Wall time includes compilation "
        "and the validation evaluations.",
        "",
        f"| steps | best val loss | time to val loss <= {args.lm_target:g} | total wall (s) | "
        "training tokens/s |",
        "|---:|---:|---:|---:|---:|",
        f"| {summary['steps']} | {summary['best_val_loss']:.4f} | {to_target} | "
        f"{summary['train_seconds']:.1f} | {summary['tokens_per_s']:,.0f} |",
        "",
        "| step | val loss | train loss | elapsed (s) |",
        "|---:|---:|---:|---:|",
    ]
    for r in history:
        lines.append(f"| {r.step} | {r.val_loss:.4f} | {r.train_loss:.4f} | {r.elapsed_s:.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the report."""
    args = parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if not args.quick and device.type != "cuda":
        print("warning: full benchmark on CPU will take very long; use --quick", file=sys.stderr)
    started = datetime.datetime.now(datetime.timezone.utc)
    sections: list[str] = []
    sources: list[str] = []

    if not args.skip_cnn:
        data, source = load_cnn_data(args, device)
        sources.append(source)
        epochs = args.cnn_epochs or (2 if args.quick else 10)
        base_epochs = args.baseline_epochs or (1 if args.quick else 2)
        modes: list[str | None] = [None]
        if device.type == "cuda" and not args.no_compile:
            modes += [m.strip() for m in args.cnn_compile_modes.split(",") if m.strip()]
        runs: list[LoopRun] = []
        failures: list[str] = []
        for mode in modes:
            # One variant failing (e.g. a compile problem) must not lose the others' figures.
            try:
                runs.append(run_cnn_ours(data, args, device, epochs, compile_mode=mode))
                print(f"{runs[-1].name}: {runs[-1].epoch_s} {runs[-1].test_acc}", flush=True)
            except Exception as e:
                failures.append(f"our loop with compile mode {mode!r}: {e!r}")
                print(failures[-1], file=sys.stderr, flush=True)
                release_memory(device)
        baseline = run_cnn_examples(data, args, device, base_epochs)
        print(f"examples: {baseline.epoch_s} {baseline.test_acc}", flush=True)
        sections.append(cnn_section(runs, baseline, args, failures))

    if not args.skip_lm:
        text, source = load_lm_data(args, device)
        sources.append(source)
        try:
            summary, history = run_char_lm(text, args, device)
            best = summary["best_val_loss"]
            print(f"charlm: {summary['steps']} steps, best {best:.4f}", flush=True)
            sections.append(lm_section(summary, history, args))
        except Exception as e:
            print(f"charlm failed: {e!r}", file=sys.stderr, flush=True)
            sections.append(f"## CharLM (nanoGPT baby GPT) on tiny shakespeare\n\nFailed: {e!r}")

    header = [
        *report_header(
            "optuna-evo objectives benchmark",
            "objectives_gpu.py",
            device,
            started,
            "quick (tiny sizes; a smoke test, not representative)" if args.quick else None,
            argv,
        ),
        *(f"- Data: {s}" for s in sources),
    ]
    report = "\n".join(header) + "\n\n" + "\n\n".join(sections) + "\n"
    elapsed = (datetime.datetime.now(datetime.timezone.utc) - started).total_seconds()
    save_report(args.out, report, elapsed)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
