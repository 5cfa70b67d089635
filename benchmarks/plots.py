"""What the pictures cost: snapshots during training, and the whole picture set after it.

Trains a preset (default: the default preset, classic-3d-tanh) on the bundled
mnist-sample for 10 epochs, then reports

(a) training time with and without the reconstruction snapshots (the median of
    ``--repeats`` runs each, alternated), so their cost shows against the noise;
(b) the time to draw the whole picture set of the run as ``aekit train`` does at
    its end -- recon.gif, recon.png, latent.png, latent.html, manifold.png (2-D codes),
    loss.png and report.html -- in this fresh process, so importing matplotlib and
    plotly is included; then each picture on its own, warm;
(c) the size of recon.gif and of the other files.

Usage: OMP_NUM_THREADS=1 python benchmarks/plots.py [--preset classic-2d-relu] [--epochs 10] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import aekit
from aekit.data import load_dataset


def train(out: Path, preset: str, epochs: int, snapshots: bool):
    """One run; with ``snapshots`` it has the ReconSnapshots callback, but never the end-of-run pictures."""
    from aekit.visualization.snapshots import ReconSnapshots, pick_snapshot_indices

    callbacks = []
    if snapshots:
        cfg = aekit.build_config(preset, dataset="mnist-sample")
        data = load_dataset("mnist-sample")
        idx = pick_snapshot_indices(data.y_test, cfg.train.snapshot_images)
        callbacks.append(ReconSnapshots(torch.from_numpy(data.x_test[idx]), out / "recon", cfg.data.scale))
    start = time.perf_counter()
    run = aekit.train(preset, dataset="mnist-sample", epochs=epochs, device="cpu", out=out, verbose=False,
                      progress=False, plots=False, callbacks=callbacks)
    return run, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default=None, help="preset to train [default: classic-3d-tanh]")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    preset = args.preset or "classic-3d-tanh"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {preset} on mnist-sample, "
          f"{args.epochs} epochs")

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        times = {False: [], True: []}
        for k in range(args.repeats):
            for snapshots in (False, True):
                run, seconds = train(tmp / f"r{k}{int(snapshots)}", preset, args.epochs, snapshots)
                times[snapshots].append(seconds)
        plain, snapped = statistics.median(times[False]), statistics.median(times[True])
        frames = len(list((run.path / "recon").glob("*.png")))
        print(f"\n(a) training, median of {args.repeats}: {plain:.2f} s without snapshots, {snapped:.2f} s with "
              f"{frames} snapshot frames ({snapped - plain:+.2f} s, {(snapped - plain) / plain:+.1%})")

        from aekit.visualization.pictures import PICTURES, draw_pictures

        data = run.load_data()
        start = time.perf_counter()
        written = draw_pictures(run, data, report=True)
        total = time.perf_counter() - start
        print(f"\n(b) the whole picture set, cold (imports included): {total:.2f} s")
        for what in PICTURES:
            if what == "manifold" and run.model.latent_dim != 2:
                continue
            start = time.perf_counter()
            draw_pictures(run, data, what)
            print(f"    {what:<9} warm: {time.perf_counter() - start:.2f} s")
        from aekit.visualization.interactive import interactive_latent
        from aekit.visualization.report import write_report

        start = time.perf_counter()
        write_report(run.path, interactive_latent(run, data))
        print(f"    {'report':<9} warm: {time.perf_counter() - start:.2f} s")

        print("\n(c) sizes")
        for path in written:
            print(f"    {path.name:<12} {path.stat().st_size / 1e6:6.2f} MB")


if __name__ == "__main__":
    main()
