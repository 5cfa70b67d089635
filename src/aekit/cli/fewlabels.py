"""``aekit fewlabels RUN --labels N``: classify a run's test images from N labelled training images.

N training images are drawn class-balanced with --seed; only their labels are used. The
unlabelled images (--unlabelled all: the other training images and the test images; test:
the test images) join them, and on the UMAP embedding of the codes (--space umap, N2D's
manifold; needs the cluster extra) or on the codes themselves (--space codes):

- cluster (default): a Gaussian mixture with a component per class clusters every image;
  each cluster takes its labelled members' majority label (a cluster without one, its
  members' nearest labelled images');
- spreading: label spreading (Zhou et al. 2004) over a nearest-neighbour graph.

Next to it, with the same N labelled images: logistic regression on their codes, and on
their pixels (the probes of aekit eval).

Writes RUN/fewlabels.json (or --out FILE): the accuracies, the settings and the labelled
images' indices; the run's report.html, when it has one, gets a Few labels section.
"""

from __future__ import annotations

HELP = "classify the test images from N labels and the unlabelled images (cluster-then-label over the codes)"


def add_parser(sub) -> None:
    import argparse

    from aekit.cli._common import add_run_arguments

    description = HELP + ".\n\n" + __doc__.split("\n\n", 1)[1]
    p = sub.add_parser("fewlabels", help=HELP, description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, dataset=True, out="where the results go [default: RUN/fewlabels.json]")
    p.add_argument("--labels", type=int, default=100, metavar="N", help="labelled training images [default: 100]")
    p.add_argument("--method", default="cluster", choices=("cluster", "spreading"),
                   help="cluster-then-label, or label spreading [default: cluster]")
    p.add_argument("--unlabelled", default="all", choices=("all", "test"),
                   help="which unlabelled images join the labelled ones [default: all]")
    p.add_argument("--space", default="umap", choices=("umap", "codes"),
                   help="where the neighbour graph is built [default: umap]")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of the draw and of UMAP [default: 0]")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from pathlib import Path

    from aekit import io
    from aekit.api import few_labels, load_run
    from aekit.rundir import RunDir

    if args.space == "umap":  # a missing extra is one line before the data loads, not after
        from aekit.integrations import require

        require("umap", "cluster", "--space umap")
    run_ = load_run(args.run, args.which)
    out = Path(args.out) if args.out else run_.dir.path / "fewlabels.json"
    io.check_writable(out.parent)
    log = io.quiet if args.quiet else io.log
    data = run_.load_data(log, args.dataset, args.data_dir)
    found = few_labels(run_, args.labels, method=args.method, space=args.space, unlabelled=args.unlabelled,
                       seed=args.seed, log=log, data=data)
    io.atomic_write_json(out, {**found.params, "labelled": found.labelled.tolist()})
    if args.out is None and run_.dir.file(RunDir.REPORT):  # the report shows the run's own result
        from aekit.visualization.pictures import draw_pictures

        draw_pictures(run_, data, what=(), report=True)
    width = max(len(name) for name in found.scores)
    print(f"{args.labels} labels of {found.params['dataset']}: test accuracy")
    for name, acc in found.scores.items():
        print(f"  {name:<{width}}  {acc:.4f}")
    print(f"\nwrote {out}")
    return 0
