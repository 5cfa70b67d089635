"""Evaluation figures: the presets' codes and reconstructions against PCA and raw pixels.

Trains each preset on Fashion-MNIST (default: every preset, each with its own epochs),
runs the full ``aekit eval`` on each, and prints Markdown:

1. one row per preset, each metric as ``model (PCA with the same code size)``, and the
   raw-pixel baseline's row;
2. the best preset of each code size (by ``--rank-by``) with its full evaluation table,
   the default preset's first;
3. whether the default preset (3-D code) beats PCA-3 on test MSE and on kNN accuracy.

With ``--scale`` it measures ``aekit eval`` itself instead: for each dataset of
``--datasets`` it trains a tiny model (one epoch), then runs the default evaluation in a
fresh process with a cold baseline cache and prints the seconds of each section and the
process's peak memory (RSS high-water mark). ``--baseline-src DIR`` also times the same
evaluation with another checkout's ``src`` (today's code) on the datasets of at most
1024 pixels, the two taken in turn (``--repeat`` times each; the best of each is printed,
wall-clock and CPU seconds, as a shared machine's load swings). ``folder64`` is a labelled folder of 2,000 64x64 colour
images cut from the Stellarium nebula photos (seeded random crops, ten classes of 400
down to 70 images), built in the output directory.

Usage: python benchmarks/evaluate.py [--presets classic-3d-tanh,classic-2d-relu] [--quick]
       [--dataset fashion-mnist] [--out runs/bench-eval]
       python benchmarks/evaluate.py --scale [--datasets mnist-sample,fashion-mnist,folder64,cifar10]
       [--baseline-src ../main] [--out runs/bench-scale]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COLUMNS = [("mse", "MSE", ".4f"), ("ssim", "SSIM", ".3f"), ("kmeans_acc", "k-means acc", ".3f"),
           ("kmeans_nmi", "NMI", ".3f"), ("knn_acc", "kNN acc", ".3f"), ("logreg_acc", "logistic acc", ".3f")]


def main() -> None:
    import aekit
    from aekit.evaluation import EvalSettings, eval_table, to_json
    from aekit.evaluation.table import format_value, markdown_table, metric_info
    from aekit.io import atomic_write_text
    from aekit.presets import DEFAULT_PRESET, PRESETS, get_preset

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", default=",".join(PRESETS), help="comma-separated presets [default: all]")
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--epochs", type=int, default=None, help="override every preset's epochs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help="a fast check: 1 epoch each, 2 draws per semi-supervised size, probes on 5000 images")
    p.add_argument("--probe-train", type=int, default=None, help="as aekit eval --probe-train [default: its default]")
    p.add_argument("--rank-by", default="knn_acc", help="metric that picks the best preset of a code size")
    p.add_argument("--out", default=None, help="keep the runs (with eval.json) here [default: a temporary dir]")
    p.add_argument("--scale", action="store_true", help="time aekit eval's sections and peak memory per dataset")
    p.add_argument("--datasets", default=",".join(SCALE_DATASETS), help="--scale: comma-separated datasets "
                   f"[default: {','.join(SCALE_DATASETS)}]")
    p.add_argument("--baseline-src", default=None, help="--scale: a checkout whose src/ holds the aekit to compare "
                   "with on the small-image datasets")
    p.add_argument("--repeat", type=int, default=1, help="--scale: runs of each code for the comparison with "
                   "--baseline-src, taken in turn [default: 1]")
    p.add_argument("--eval-child", default=None, help=argparse.SUPPRESS)  # RUN: one timed evaluation
    args = p.parse_args()
    if args.eval_child:
        return _eval_child(args.eval_child)
    if args.scale:
        return scale(args)

    presets = [s.strip() for s in args.presets.split(",") if s.strip()]
    for name in presets:
        get_preset(name)  # fails early on a typo
    epochs = 1 if args.quick and args.epochs is None else args.epochs
    settings = EvalSettings.from_values(semi_draws=2 if args.quick else None,
                                        probe_train=args.probe_train or (5000 if args.quick else None))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="aekit-bench-eval-"))

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    summaries = {}
    for name in presets:
        start = time.perf_counter()
        run = aekit.train(name, dataset=args.dataset, epochs=epochs, seed=args.seed, out=out / name,
                          verbose=False, progress=False)
        log(f"{name}: trained {len(run.metrics)} epochs in {time.perf_counter() - start:.0f}s")
        result = aekit.evaluate(run, settings=settings, log=log)
        atomic_write_text(run.path / "eval.json", to_json(result.summary))
        summaries[name] = result.summary

    any_summary = next(iter(summaries.values()))
    ds = any_summary["dataset"]
    semi_key = f"semi_{settings.semi_sizes[min(1, len(settings.semi_sizes) - 1)]}"  # 100 labels by default
    cols = COLUMNS + [(semi_key, metric_info(semi_key)[0].replace(": accuracy", " acc"), ".3f")]
    print(f"## Evaluation on {ds['name']} ({ds['train']} train / {ds['test']} test images), seed {args.seed}\n")
    print("Each cell: the preset's model (PCA with the same code size, fitted on the training pixels). "
          f"{any_summary['notes'][1]}; {any_summary['notes'][2]}.\n")
    headers = ["preset", "z", "epochs", *(f"{title} {'↓' if metric_info(k)[1] == 'lower' else '↑'}"
                                          for k, title, _ in cols)]
    rows = []
    for name, s in summaries.items():
        model, pca = s["results"]["model"], s["results"]["pca"]
        rows.append([name, str(s["run"]["latent_dim"]), str(s["run"]["epochs_trained"]),
                     *(f"{format_value(model[k], f)} ({format_value(pca[k], f)})" for k, _, f in cols)])
    pixels = any_summary["results"]["pixels"]
    rows.append(["raw pixels", "784", "–", *(format_value(pixels.get(k), f) for k, _, f in cols)])
    print(markdown_table(headers, rows, "lrr" + "r" * len(cols)))

    sign = 1 if metric_info(args.rank_by)[1] == "higher" else -1
    by_dim: dict[int, list[str]] = {}
    for name, s in summaries.items():
        by_dim.setdefault(s["run"]["latent_dim"], []).append(name)
    best = {d: max(names, key=lambda n: sign * summaries[n]["results"]["model"][args.rank_by])
            for d, names in sorted(by_dim.items())}
    shown = ([DEFAULT_PRESET] if DEFAULT_PRESET in summaries else []) + \
        [n for n in best.values() if n != DEFAULT_PRESET]
    for name in shown:
        d = summaries[name]["run"]["latent_dim"]
        tag = "default preset" if name == DEFAULT_PRESET else f"best {args.rank_by} with a {d}-D code"
        print(f"\n### {name} ({tag})\n")
        print(eval_table(summaries[name]))

    if DEFAULT_PRESET in summaries:
        model, pca = (summaries[DEFAULT_PRESET]["results"][r] for r in ("model", "pca"))
        d = summaries[DEFAULT_PRESET]["run"]["latent_dim"]
        mse_ok, knn_ok = model["mse"] < pca["mse"], model["knn_acc"] > pca["knn_acc"]
        print(f"\ntarget: {DEFAULT_PRESET} beats PCA-{d} on test MSE: {'yes' if mse_ok else 'NO'} "
              f"({model['mse']:.4f} vs {pca['mse']:.4f}); on kNN accuracy: {'yes' if knn_ok else 'NO'} "
              f"({model['knn_acc']:.3f} vs {pca['knn_acc']:.3f})")
    print(f"\nruns and eval.json files: {out}")


# --------------------------------------------------------------------------- --scale

STELLARIUM = Path(os.environ.get("AEKIT_TESTDATA", "~/.cache/aekit-testdata")).expanduser() / "stellarium-nebulae"
CIFAR_NPZ = Path("/work/data/cifar10.npz")
SCALE_DATASETS = ("mnist-sample", "fashion-mnist", "folder64", "cifar10")
# dataset -> (how it is given to aekit train, the training flags): one epoch of a small model with a code
# size like the presets' (the evaluation's time is what is measured)
TINY = {"mnist-sample": ["--preset", "classic-3d-tanh"], "mnist": ["--preset", "classic-3d-tanh"],
        "fashion-mnist": ["--preset", "classic-3d-tanh"],
        "folder64": ["--preset", "conv-16", "--channels", "8,16", "--image-size", "64"],
        "cifar10": ["--preset", "conv-16", "--channels", "8,16"]}
FOLDER_CLASSES = (400, 320, 260, 220, 200, 170, 150, 120, 90, 70)  # 2,000 images


def build_folder64(root: Path, size: int = 64) -> Path:
    """2,000 labelled ``size`` x ``size`` RGB PNGs cut from the Stellarium photos: class ``c`` takes seeded random
    square crops (30-100 % of the short side) of every tenth photo, starting at the ``c``-th.
    """
    import numpy as np
    from PIL import Image

    if (root / "done").exists():
        return root
    photos = sorted(STELLARIUM.glob("*.png"))
    if not photos:
        sys.exit(f"{STELLARIUM}: no photos (set AEKIT_TESTDATA)")
    rng = np.random.default_rng(0)
    for c, n in enumerate(FOLDER_CLASSES):
        mine = photos[c::len(FOLDER_CLASSES)]
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            with Image.open(mine[rng.integers(len(mine))]) as im:
                im = im.convert("RGBA").convert("RGB")
                w, h = im.size
                side = int(min(w, h) * rng.uniform(0.3, 1.0))
                x0, y0 = rng.integers(0, w - side + 1), rng.integers(0, h - side + 1)
                im.crop((x0, y0, x0 + side, y0 + side)).resize((size, size), Image.BILINEAR) \
                    .save(root / f"class{c}" / f"{i:04d}.png")
    (root / "done").touch()
    return root


def scale(args) -> None:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="aekit-bench-scale-"))
    names = [s.strip() for s in args.datasets.split(",") if s.strip()]
    print(f"## aekit eval's time and memory per dataset ({os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f} at the start)\n")
    print("Each dataset: one epoch of a tiny model, then the default `aekit eval` in a fresh process with a cold "
          "baseline cache; seconds per section (from eval.json's `sections`), the whole evaluation, and the "
          "process's peak RSS (training not included).\n")
    for name in names:
        spec = {"folder64": lambda: str(build_folder64(out / "folder64")),
                "cifar10": lambda: str(CIFAR_NPZ)}.get(name, lambda: name)()
        run = out / "runs" / name
        if not (run / "config.json").exists():
            start = time.perf_counter()
            _aekit(["train", *TINY[name], "--epochs", "1", "--device", "cpu", "--dataset", spec, "--out", str(run),
                    "--quiet"], os.environ)
            print(f"<!-- {name}: trained in {time.perf_counter() - start:.0f}s -->", file=sys.stderr)
        figures = _timed_eval(run, out / "cache" / name, src=None)
        print(f"### {name}: {figures['dataset']}: {figures['seconds']:.1f} s ({figures['cpu']:.1f} s of CPU), peak "
              f"RSS {figures['rss_mb']:.0f} MB (load average {figures['load']:.1f} before)\n")
        print(f"PCA method: {figures['methods']['pca']} ({figures['methods']['pca_components']} components); "
              f"pixel probes on: {figures['methods']['pixels']}.\n")
        print("| section | seconds |\n|:--|--:|")
        for section, seconds in figures["sections"].items():
            print(f"| {section} | {seconds:.1f} |")
        if args.baseline_src and figures["pixels"] <= 1024:
            # alternate the two, so that both meet the same swings of a shared machine; keep each one's best
            now, before = [figures], []
            for i in range(args.repeat):
                before.append(_timed_eval(run, out / "cache-before" / name, src=Path(args.baseline_src) / "src"))
                if i + 1 < args.repeat:
                    now.append(_timed_eval(run, out / "cache" / name, src=None))
            same = all(b["results"] == figures["results"] for b in before)
            print(f"\nagainst {args.baseline_src} (today's code), best of {len(now)} and {len(before)} runs taken in "
                  f"turn: {min(f['seconds'] for f in now):.1f} s and {min(f['cpu'] for f in now):.1f} s of CPU here, "
                  f"{min(b['seconds'] for b in before):.1f} s and {min(b['cpu'] for b in before):.1f} s of CPU "
                  f"there; peak RSS {max(b['rss_mb'] for b in before):.0f} MB there; results "
                  f"{'identical' if same else 'DIFFERENT'}")
        print()
    print(f"runs: {out / 'runs'}")


def _aekit(argv: list[str], env) -> None:
    subprocess.run([sys.executable, "-m", "aekit", *argv], check=True, env=env)


def _timed_eval(run: Path, cache: Path, src: Path | None) -> dict:
    """One default evaluation of ``run`` in a fresh process with an empty baseline cache: its figures."""
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    env["AEKIT_BENCH_BASELINES"] = str(cache)
    load = os.getloadavg()[0]
    done = subprocess.run([sys.executable, __file__, "--eval-child", str(run)], check=True, env=env,
                          stdout=subprocess.PIPE, text=True)
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "load": load}


def _eval_child(run: str) -> None:
    import shutil

    import numpy as np

    import aekit

    cache = Path(os.environ["AEKIT_BENCH_BASELINES"])
    shutil.rmtree(cache, ignore_errors=True)  # cold
    start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    result = aekit.evaluate(run, cache_dir=cache, log=lambda msg: None)
    seconds = time.perf_counter() - start  # the whole of aekit.evaluate: loading, encoding, every section
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    s = result.summary
    ds, shape = s["dataset"], aekit.load_run(run).model.input_shape
    print(json.dumps({
        "dataset": f"{ds['train']} train / {ds['test']} test images of {'x'.join(map(str, shape))}",
        "pixels": int(np.prod(shape)), "seconds": seconds, "cpu": cpu,
        "sections": s.get("sections", {}), "methods": s.get("methods", {"pca": "covariance", "pca_components": "-",
                                                                          "pixels": "raw"}),
        "rss_mb": usage.ru_maxrss / 1024, "results": s["results"]}))


if __name__ == "__main__":
    main()
