"""aekit against pythae: the same VAE trained by each library's own loop.

The network is aekit's ``vae-2d`` (784-512-256-2 ReLU encoder giving mean and log-variance,
2-256-512-784 ReLU decoder with sigmoid outputs), with no KL warm-up, Bernoulli decoder
(BCE summed over pixels) plus the KL to N(0, I): the negative ELBO per image, the loss
both minimise (aekit's is divided by the 784 pixels, which Adam does not see). Adam lr
1e-3, batch 128, Fashion-MNIST 60,000 train / 10,000 test, pixels in [0, 1], CPU.

- aekit: ``aekit.train("vae-2d", kl_warmup_epochs=0, ...)`` in the main environment;
- pythae 0.1.2 (PyPI): ``pythae.pipelines.TrainingPipeline`` with its ``VAE`` on the same
  network written as its ``BaseEncoder``/``BaseDecoder``, in an environment of its own
  (``benchmarks/.venv-peers``, made by this script on first use: torch==2.13.0 first,
  then pythae==0.1.2; never a dependency of aekit).

Both run in fresh processes of this script, one after the other, alternating, with the
same thread count. "s/epoch" is the median over all epochs of all repeats of the time
from the start of an epoch to the end of its test-set evaluation (aekit: ``seconds``
in its metrics; pythae: from its ``on_epoch_begin`` to its ``on_epoch_end`` callback).
"test -ELBO" is the negative ELBO per image in nats on the 10,000 test images, computed
by the same code for both models: with the mean code (z = mu, what aekit reports as
``test_loss`` x 784) and with one sampled code per image (seeded; what pythae's own
evaluation does). Targets: aekit at most 0.5x pythae's s/epoch, at an equal or better
test loss (within 1%).

Usage: python benchmarks/peers.py [--epochs 3] [--repeats 3] [--threads 2]
       [--venv benchmarks/.venv-peers] [--dataset fashion-mnist]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_RATIO = 0.5
PYTHAE = "pythae==0.1.2"
TORCH = "torch==2.13.0"  # first, so pip never pulls a CUDA build for pythae's bare torch requirement
D = 784  # pixels per image


# ----------------------------------------------------------------------- shared by both sides

def neg_elbo_nats(encode, decode, x, seed: int) -> tuple[float, float]:
    """Mean over images of -ELBO per image, in nats: with z = mu, and with one sampled z.

    ``encode(x) -> (mu, log_var)``, ``decode(z) -> recon_x`` in (0, 1); ``x`` float (N, 1, 28, 28).
    """
    import torch
    import torch.nn.functional as F

    gen = torch.Generator().manual_seed(seed)
    sums = [0.0, 0.0]
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            xb = x[i:i + 1000]
            mu, log_var = encode(xb)
            kl = -0.5 * torch.sum(1 + log_var - mu.pow(2) - log_var.exp(), dim=1)  # (B,)
            eps = torch.randn(mu.shape, generator=gen)
            for j, z in enumerate((mu, mu + torch.exp(0.5 * log_var) * eps)):
                recon = decode(z).reshape(len(xb), -1)
                bce = F.binary_cross_entropy(recon, xb.reshape(len(xb), -1), reduction="none").sum(1)
                sums[j] += float((bce + kl).sum())
    return sums[0] / len(x), sums[1] / len(x)


def _load_test(data_file: str):
    import numpy as np
    import torch

    with np.load(data_file) as f:
        return torch.from_numpy(f["x_test"].astype(np.float32) / 255)  # (N, 1, 28, 28)


# ----------------------------------------------------------------------- aekit's side

def run_aekit(args) -> dict:
    import aekit

    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = aekit.train("vae-2d", dataset=args.dataset, epochs=args.epochs, seed=args.seed, kl_warmup_epochs=0.0,
                          batch_size=128, lr=1e-3, device="cpu", out=f"{tmp}/run", verbose=False, progress=False,
                          plots=False)
        total = time.perf_counter() - start
    model = run.model.cpu().eval()
    mean_code, sampled = neg_elbo_nats(model.encode_distribution, model.decode, _load_test(args.data), args.seed)
    return {"seconds": [m["seconds"] for m in run.metrics], "total": total, "mean_code": mean_code,
            "sampled": sampled, "own_test_loss": run.metrics[-1]["test_loss"] * D,
            "params": sum(p.numel() for p in model.parameters())}


# ----------------------------------------------------------------------- pythae's side

def run_pythae(args) -> dict:
    import numpy as np
    import torch
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.pipelines import TrainingPipeline
    from pythae.trainers import BaseTrainerConfig
    from pythae.trainers.training_callbacks import TrainingCallback
    from torch import nn

    class Encoder(BaseEncoder):  # aekit's mlp body: 784-512-256 ReLU, then mu and log_var side by side
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Flatten(), nn.Linear(D, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
                                     nn.Linear(256, 4))

        def forward(self, x):
            mu, log_var = self.net(x).chunk(2, dim=1)
            return ModelOutput(embedding=mu, log_covariance=log_var)

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(2, 256), nn.ReLU(), nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, D),
                                     nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).view(-1, 1, 28, 28))

    class EpochTimer(TrainingCallback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_epoch_begin(self, training_config, **kwargs):
            self.start = time.perf_counter()

        def on_epoch_end(self, training_config, **kwargs):
            self.seconds.append(time.perf_counter() - self.start)

    torch.manual_seed(args.seed)
    with np.load(args.data) as f:
        x_train = f["x_train"].astype(np.float32) / 255  # (60000, 1, 28, 28)
        x_test = f["x_test"].astype(np.float32) / 255
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=2, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    timer = EpochTimer()
    with tempfile.TemporaryDirectory() as tmp:
        config = BaseTrainerConfig(output_dir=tmp, num_epochs=args.epochs, learning_rate=1e-3,
                                   per_device_train_batch_size=128, per_device_eval_batch_size=1000,
                                   optimizer_cls="Adam", no_cuda=True, seed=args.seed)
        pipeline = TrainingPipeline(model=model, training_config=config)
        start = time.perf_counter()
        pipeline(train_data=x_train, eval_data=x_test, callbacks=[timer])
        total = time.perf_counter() - start
    trained = pipeline.trainer.model.cpu().eval()  # the last epoch's weights, as aekit's figures are

    def encode(x):
        out = trained.encoder(x)
        return out.embedding, out.log_covariance

    mean_code, sampled = neg_elbo_nats(encode, lambda z: trained.decoder(z).reconstruction,
                                       torch.from_numpy(x_test), args.seed)
    return {"seconds": timer.seconds, "total": total, "mean_code": mean_code, "sampled": sampled,
            "params": sum(p.numel() for p in trained.parameters())}


# ----------------------------------------------------------------------- orchestration

def ensure_peer_venv(venv: Path) -> Path:
    """The peer's own environment, made on first use; returns its python."""
    python = venv / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import pythae"], capture_output=True).returncode == 0:
        return python
    print(f"making {venv} ({TORCH}, then {PYTHAE}) ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    for spec in (TORCH, PYTHAE):
        subprocess.run([python, "-m", "pip", "install", "--quiet", spec], check=True)
    return python


def side(python, which: str, args, data_file: str, seed: int) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    if which == "aekit":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent / "src"), env.get("PYTHONPATH")]))
    cmd = [str(python), __file__, "--side", which, "--data", data_file, "--seed", str(seed),
           "--epochs", str(args.epochs), "--threads", str(args.threads), "--dataset", args.dataset]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"{which} failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def versions(python) -> str:
    code = ("import importlib.metadata as m, torch; "
            "print(' '.join(f'{p} {m.version(p)}' for p in ('pythae', 'torch') if p))")
    return subprocess.run([str(python), "-c", code], capture_output=True, text=True).stdout.strip()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3, help="runs per library (seeds 0..N-1), alternating")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--venv", default=str(HERE / ".venv-peers"), help="pythae's own environment (made if missing)")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--side", choices=("aekit", "pythae"), help=argparse.SUPPRESS)  # one side, in a child process
    p.add_argument("--data", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()

    if args.side:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps((run_aekit if args.side == "aekit" else run_pythae)(args)))
        return 0

    result = measure(args.epochs, args.repeats, args.threads, args.venv, args.dataset)
    rows = result["rows"]
    print(f"\n{result['data']}, {args.threads} threads, {args.epochs} epochs x {args.repeats} seeds; pythae side: "
          f"{result['versions']}")
    print(f"\n| vae-2d network, {args.threads} threads | s/epoch (median) | whole call / epochs | "
          f"test -ELBO nats/image, mean code | sampled code | parameters |")
    print("|---|---:|---:|---:|---:|---:|")
    for which, (sec, total, mean_code, sampled, params) in rows.items():
        print(f"| {which} | {sec:.2f} | {total:.2f} | {mean_code:.2f} | {sampled:.2f} | {params:,} |")
    print(f"\naekit's own test_loss x {D}: {result['aekit_own']:.2f} nats (the mean-code column, computed by aekit)")
    print(f"time ratio aekit/pythae: {result['ratio']:.2f}x (target <= {TARGET_RATIO}): "
          f"{'PASS' if result['fast'] else 'FAIL'}")
    print(f"test -ELBO equal or better (within 1%): {'PASS' if result['loss_ok'] else 'FAIL'}")
    return 0 if result["fast"] and result["loss_ok"] else 1


def measure(epochs: int = 3, repeats: int = 3, threads: int = 2, venv: str | Path = HERE / ".venv-peers",
            dataset: str = "fashion-mnist") -> dict:
    """Train both sides ``repeats`` times, alternating; the figures main() prints (``benchmarks/speed.py`` too)."""
    import numpy as np

    from aekit.data import load_dataset

    args = argparse.Namespace(epochs=epochs, repeats=repeats, threads=threads, venv=str(venv), dataset=dataset)
    peer_python = ensure_peer_venv(Path(args.venv))
    data = load_dataset(args.dataset)
    results: dict[str, list[dict]] = {"aekit": [], "pythae": []}
    with tempfile.TemporaryDirectory() as tmp:
        data_file = f"{tmp}/data.npz"
        np.savez(data_file, x_train=data.x_train, x_test=data.x_test)  # the very images aekit trains on
        for seed in range(args.repeats):
            for which, python in (("aekit", sys.executable), ("pythae", peer_python)):
                r = side(python, which, args, data_file, seed)
                results[which].append(r)
                print(f"{which} seed {seed}: {statistics.median(r['seconds']):.2f} s/epoch, "
                      f"test -ELBO {r['mean_code']:.2f} nats (mean code), {r['sampled']:.2f} (sampled)", flush=True)
    rows = {}
    for which, rs in results.items():
        rows[which] = (statistics.median(s for r in rs for s in r["seconds"]),
                       statistics.mean(r["total"] for r in rs) / args.epochs,
                       statistics.mean(r["mean_code"] for r in rs), statistics.mean(r["sampled"] for r in rs),
                       rs[0]["params"])
    ratio = rows["aekit"][0] / rows["pythae"][0]
    return {"rows": rows, "ratio": ratio, "fast": ratio <= TARGET_RATIO,
            "loss_ok": rows["aekit"][2] <= rows["pythae"][2] * 1.01,
            "aekit_own": statistics.mean(r["own_test_loss"] for r in results["aekit"]),
            "data": f"{data.name}: {len(data.x_train)} train / {len(data.x_test)} test",
            "versions": versions(peer_python)}


if __name__ == "__main__":
    sys.exit(main())
