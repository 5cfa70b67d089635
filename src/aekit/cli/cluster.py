"""``aekit cluster RUN``: group a run's images by their codes, without labels.

Methods (``--method``):

- ``n2d`` (default): N2D (McConville et al. 2020): UMAP of the codes (20 neighbours,
  min_dist 0, to 10 dimensions), then a full-covariance Gaussian mixture; needs the
  ``cluster`` extra (``pip install 'aekit[cluster]'``, which brings umap-learn);
- ``n2d-merge``: N2D's embedding, over-clustered (a mixture of twice k components) and the
  components merged, the most connected pair along the embedding's neighbour graph first,
  with no group allowed past 1.3 times the mean group size while another join fits: for
  groups of comparable size (on Fashion-MNIST it keeps sandals and bags whole where n2d
  splits them); where one group holds most of the images, use n2d; needs the same extra;
- ``gmm``: the Gaussian mixture on the codes as they are;
- ``idec`` / ``dec``: IDEC (Guo et al. 2017) / DEC (Xie et al. 2016): a copy of the encoder
  trained further, through aekit's training loop, so that its codes cluster: centroids from
  k-means on the codes, a Student's t soft assignment, and the KL divergence to a sharpened
  target refreshed every 140 steps (IDEC keeps the reconstruction loss too); the refined
  weights and centroids go to idec.safetensors / dec.safetensors beside the clusters,
  never over the run's own.

The number of clusters is ``--k``, or else estimated over 2..--k-max without labels: for
n2d and n2d-merge the k whose clusters have the highest mean silhouette in the UMAP
embedding, for gmm the k whose mixture has the lowest BIC (idec and dec: gmm's estimate);
the command prints which k it chose and why.

Written into RUN/cluster/ (or --out DIR):

- ``assignments.csv``: ``split,index,file,label,class,cluster,probability,distance``, one
  row per image (``file`` for image folders; ``label`` -1 and ``class`` empty when the
  data has no labels; ``probability`` the mixture's for that cluster; ``distance`` the
  Mahalanobis distance to the cluster's centre);
- ``clusters.json``: method, k and how it was chosen, cluster sizes, scores;
- ``members.png``: one row per cluster, its most typical members left, least typical right;
- ``codes.png``: the codes coloured by cluster.

With labels, the labels only score the result: accuracy (Hungarian matching), NMI and
ARI, next to k-means with the same k on the codes and on PCA of the pixels.
"""

from __future__ import annotations

HELP = "group a run's images by their codes (N2D: UMAP + Gaussian mixture), k given or estimated"


def add_parser(sub) -> None:
    import argparse

    from aekit.cli._common import add_run_arguments

    description = HELP + ".\n\n" + __doc__.split("\n\n", 1)[1].replace("``", "")
    p = sub.add_parser("cluster", help=HELP, description=description,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_arguments(p, dataset=True)
    p.add_argument("--k", type=int, default=None, metavar="K", help="number of clusters [default: estimated]")
    p.add_argument("--k-max", type=int, default=15, metavar="K",
                   help="largest k tried when estimating it [default: 15]")
    p.add_argument("--method", default="n2d", choices=("n2d", "n2d-merge", "gmm", "idec", "dec"),
                   help="n2d: UMAP, then a Gaussian mixture (needs aekit[cluster]); n2d-merge: the same, "
                        "over-clustered and merged into groups of comparable size; gmm: the mixture on the codes; "
                        "idec/dec: refine a copy of the encoder with a clustering loss [default: n2d]")
    p.add_argument("--split", default="all", choices=("all", "train", "test"), help="which images [default: all]")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of UMAP and the mixture [default: 0]")
    p.add_argument("--members", type=int, default=8, metavar="N", help="images per side in members.png [default: 8]")
    p.add_argument("--projection", default="pca", choices=("pca", "tsne"),
                   help="how codes of more than 3 dimensions are drawn in codes.png [default: pca]")
    p.add_argument("--out", default=None, metavar="DIR", help="where the files go [default: RUN/cluster]")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit import io
    from aekit.api import cluster, load_run, save_clustering
    from aekit.errors import ConfigError

    if args.members < 1:
        raise ConfigError(f"--members: must be >= 1, got {args.members}")
    from aekit.evaluation.clustering import MANIFOLD

    if args.method in MANIFOLD:  # a missing extra is one line before the data loads, not after
        from aekit.integrations import require

        require("umap", "cluster", f"--method {args.method} (UMAP)")
    run_ = load_run(args.run, args.which)
    out = run_.dir.cluster_dir(args.out)
    io.check_writable(out)  # now, not after the slow part
    log = io.quiet if args.quiet else io.log
    data = run_.load_data(log, args.dataset, args.data_dir)
    result = cluster(run_, args.k, method=args.method, split=args.split, which=args.which, seed=args.seed,
                     k_max=args.k_max, log=log, data=data)
    written = save_clustering(run_, result, data, args.out, args.members, args.projection)
    print(_table(result))
    print(f"\nwrote {out}/: {', '.join(p.name if p.parent == out else str(p) for p in written)}")
    return 0


def _table(result) -> str:
    s = result.summary
    lines = [f"{s['data']['images']:,} images ({s['data']['split']}) of "
             f"{s['data']['dataset']} in {s['k']} clusters by {s['method_name']}; {s['why_k']}",
             "sizes: " + ", ".join(f"{c}: {n:,}" for c, n in enumerate(s["sizes"]))]
    if result.scores:
        width = max(len(name) for name in result.scores)
        lines += ["", f"{'against the labels':<{width}}  accuracy    NMI    ARI"]
        lines += [f"{name:<{width}}  {r['acc']:8.3f}  {r['nmi']:5.3f}  {r['ari']:5.3f}"
                  for name, r in result.scores.items()]
    return "\n".join(lines)
