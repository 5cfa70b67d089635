"""Evaluation figures: the presets' codes and reconstructions against PCA and raw pixels.

Trains each preset on Fashion-MNIST (default: every preset, each with its own epochs),
runs the full ``aekit eval`` on each, and prints Markdown:

1. one row per preset, each metric as ``model (PCA with the same code size)``, and the
   raw-pixel baseline's row;
2. the best preset of each code size (by ``--rank-by``) with its full evaluation table,
   the default preset's first;
3. whether the default preset (3-D code) beats PCA-3 on test MSE and on kNN accuracy.

Usage: python benchmarks/evaluate.py [--presets classic-3d-tanh,classic-2d-relu] [--quick]
       [--dataset fashion-mnist] [--out runs/bench-eval]
"""

from __future__ import annotations

import argparse
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
    from aekit.presets import DEFAULT_PRESET, PRESETS, get_preset
    from aekit.training.checkpoint import atomic_write_text

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
    args = p.parse_args()

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


if __name__ == "__main__":
    main()
