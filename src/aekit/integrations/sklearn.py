"""A scikit-learn estimator around an aekit autoencoder: codes as features, and back.

:class:`AutoencoderTransformer` follows scikit-learn's rules for estimators: ``__init__``
only stores its parameters, ``fit`` validates ``X`` (``check_array``, ``n_features_in_``)
and learns attributes ending in ``_``, methods called before ``fit`` raise
``NotFittedError``, and ``clone``/``get_params``/``set_params`` work, so it sits in a
``Pipeline`` and under ``GridSearchCV``. It trains with the same model registry and
training loop as ``aekit train`` but writes no run directory. Pickling keeps the
weights as safetensors bytes, never a pickled torch module.

It takes the arrays scikit-learn users have, ``(N, D)``, scaled to the model's range
as ``scaling`` says:

- ``"minmax"`` (tabular features): each feature mapped from its training range to the
  model's range (``[0, 1]``, or ``[-0.5, 0.5]`` for a preset with centred pixels);
  test values outside the training range fall outside it, and reconstruct badly,
  which is what an anomaly score wants;
- ``"standard"``: each feature to mean 0 and standard deviation 1; the output
  activation is then ``linear`` unless ``overrides`` sets another;
- ``"pixels"``: image pixels, ``uint8`` in ``[0, 255]`` (scaled by :mod:`aekit.pixels`
  as ``aekit train`` does) or floats in ``[0, 1]``; each row is an image of
  ``image_shape``, inferred when ``D`` is ``H*H`` or ``3*H*H``;
- ``"none"``: the features as they are (``linear`` output as for ``"standard"``);
- ``"auto"`` (default): ``"pixels"`` when ``image_shape`` is given or ``X`` is
  ``uint8``, else ``"minmax"``.

Tabular rows go to the model as ``(1, 1, D)`` "images", so the fully connected body
sees the ``D`` features; give image rows an ``image_shape`` (or square ``D``) for a
convolutional body.

A flattened colour image does not say its order: NumPy arrays from Pillow or OpenCV
are ``(H, W, C)`` (``channels_last=True``), PyTorch's and aekit's are ``(C, H, W)``
(``channels_last=False``). Read in the wrong order, the pixels are scrambled and the
model still trains, on noise. So colour rows need ``channels_last``; ``fit`` refuses
them without it. Grey rows (one channel) and tabular rows are the same either way.

Rows go through the model in chunks of exactly :data:`CHUNK` rows, the last one padded:
float32 matrix products round differently with the number of rows in them, and a
row's code or score must not depend on which other rows came with it.

>>> from aekit.sklearn import AutoencoderTransformer
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.cluster import KMeans
>>> pipe = make_pipeline(AutoencoderTransformer(latent_dim=8, epochs=5), KMeans(10))  # doctest: +SKIP
>>> clusters = pipe.fit_predict(X)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import numbers

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

SCALINGS = ("auto", "minmax", "standard", "pixels", "none")
UNBOUNDED = ("standard", "none")  # scalings whose values no bounded output activation can reach
MONITOR_ROWS = 1000  # training rows the per-epoch "test" loss is computed on when no data is held out
CHUNK = 64  # rows per forward pass outside training, always (see the module docstring)
GREY_OR_COLOUR = (1, 3)  # the channel counts an image shape is inferred with


class AutoencoderTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """An autoencoder as a scikit-learn transformer: ``transform`` gives codes, ``inverse_transform`` decodes.

    Parameters
    ----------
    preset : str, optional
        A preset name (``aekit presets``); default ``classic-3d-tanh``. Not with ``config``.
    config : dict, RunConfig or str, optional
        A run's config (``config.json``'s path, its dict, or an :class:`aekit.config.RunConfig`).
    model, latent_dim, hidden, epochs, batch_size, lr : optional
        Config fields of the same name; ``None`` keeps the preset's (or config's) value.
    overrides : dict, optional
        Any other config field by its flat name, e.g. ``{"beta": 4.0, "channels": (16, 32)}``.
    random_state : int, RandomState or None, default 0
        The training seed (initialisation, shuffling, noise); ``None`` draws one.
    device : str, optional
        ``auto``, ``cpu``, ``cuda`` or ``mps``; default the preset's (``auto``).
    image_shape : tuple of int, optional
        The shape of each row when the rows are images: ``(H, W)`` for grey images, or
        ``(H, W, C)`` with ``channels_last=True``, ``(C, H, W)`` with ``channels_last=False``.
    channels_last : bool, optional
        The order of a colour row's values: ``True`` for ``(H, W, C)`` flattened (NumPy
        arrays from Pillow, OpenCV, TensorFlow), ``False`` for ``(C, H, W)`` (PyTorch,
        aekit's datasets). Needed for rows of more than one channel; ``None`` refuses them.
    scaling : {"auto", "minmax", "standard", "pixels", "none"}, default "auto"
        How features are mapped to the model's range (see the module docstring).
    validation_fraction : float, default 0.0
        Share of the rows held out (at random, with the seed) to compute ``history_``'s
        ``test_*`` losses; with 0 they are computed on the first 1,000 training rows.
    verbose : bool, default False
        Print one line per epoch.

    Attributes
    ----------
    model_ : aekit.models.AutoEncoder
        The trained torch module, in eval mode (on the CPU after unpickling).
    config_ : aekit.config.RunConfig
        The resolved config it was trained with.
    scaling_ : str
        The scaling in use (``"auto"`` resolved).
    center_, scale_ : ndarray of shape (n_features_in_,)
        The model sees ``(X - center_) / scale_`` (float rows; ``uint8`` pixels go through
        :func:`aekit.pixels.to_model`).
    input_shape_ : tuple of int
        ``(C, H, W)`` of one row as the model sees it; ``(1, 1, D)`` for tabular rows.
    channels_last_ : bool
        Whether rows are ``(H, W, C)`` flattened (then moved to ``(C, H, W)`` for the model).
    n_components_ : int
        The code size.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` had string column names.
    history_ : list of dict
        One dict of losses per epoch, as in ``metrics.jsonl``.

    Examples
    --------
    >>> ae = AutoencoderTransformer(latent_dim=2, epochs=3).fit(X)  # doctest: +SKIP
    >>> ae.transform(X).shape, ae.inverse_transform(ae.transform(X)).shape  # doctest: +SKIP
    ((N, 2), (N, D))

    Colour images from Pillow, each ``np.asarray(image)`` of shape ``(64, 64, 3)``:

    >>> X = np.stack([np.asarray(im) for im in images]).reshape(len(images), -1)  # doctest: +SKIP
    >>> ae = AutoencoderTransformer("conv-16", image_shape=(64, 64, 3), channels_last=True).fit(X)  # doctest: +SKIP
    """

    def __init__(self, preset=None, *, config=None, model=None, latent_dim=None, hidden=None, epochs=None,
                 batch_size=None, lr=None, overrides=None, random_state=0, device=None, image_shape=None,
                 channels_last=None, scaling="auto", validation_fraction=0.0, verbose=False):
        self.preset = preset
        self.config = config
        self.model = model
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.overrides = overrides
        self.random_state = random_state
        self.device = device
        self.image_shape = image_shape
        self.channels_last = channels_last
        self.scaling = scaling
        self.validation_fraction = validation_fraction
        self.verbose = verbose

    # ----------------------------------------------------------------- fitting

    def fit(self, X, y=None):
        """Train the autoencoder on ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        import torch

        from aekit.models import create_model
        from aekit.training import EpochPrinter, Trainer, resolve_device

        X = validate_data(self, X, dtype="numeric")
        if self.scaling not in SCALINGS:
            raise ValueError(f"scaling: {self.scaling!r} is not allowed; choose one of: {', '.join(SCALINGS)}")
        self.scaling_ = self.scaling
        if self.scaling == "auto":
            self.scaling_ = "pixels" if self.image_shape is not None or X.dtype == np.uint8 else "minmax"
        self.config_ = self._build_config()
        self.input_shape_, self.channels_last_ = self._image_layout(X.shape[1])
        self.center_, self.scale_ = self._fit_scaling(X)
        x = self._to_model(X)  # (N, C, H, W) float32
        train, monitor = self._split(len(x))
        device = resolve_device(self.config_.train.device)
        callbacks = [EpochPrinter(print)] if self.verbose else []
        with torch.random.fork_rng(devices=[]):  # seed the global generator without disturbing the caller's
            torch.manual_seed(self.config_.train.seed)
            model = create_model(self.config_.model, self.input_shape_).to(device)
            trainer = Trainer(model, self.config_.train, self.config_.data.scale, callbacks)
            self.history_ = trainer.fit(x[train].to(device), x[monitor].to(device))
        self.model_ = model.eval()
        self.n_components_ = model.code_size  # the flat code's width (a grid code's every cell)
        return self

    def _build_config(self):
        from aekit.resolve import build_config

        fields = {"model": self.model, "latent_dim": self.latent_dim, "hidden": self.hidden,
                  "epochs": self.epochs, "batch_size": self.batch_size, "lr": self.lr, "device": self.device}
        overrides = dict(self.overrides or {})
        for name, value in fields.items():
            if value is not None and name in overrides:
                raise ValueError(f"overrides['{name}']: also given as the {name} parameter; give it once")
            if value is not None:
                overrides[name] = value
        if self.scaling_ in UNBOUNDED:
            overrides.setdefault("output_activation", "linear")
        overrides["seed"] = self._seed()
        return build_config(self.preset, self.config, **overrides)

    def _seed(self) -> int:
        if isinstance(self.random_state, numbers.Integral):
            return int(self.random_state)
        return int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))

    def _image_layout(self, n_features: int) -> tuple[tuple[int, int, int], bool]:
        """``(C, H, W)`` of one row as the model sees it, and whether rows are channels-last.

        A colour row's order cannot be read from its values, so without ``channels_last``
        it is refused rather than guessed (see the module docstring).
        """
        if self.channels_last not in (None, True, False):
            raise ValueError(f"channels_last: expected True, False or None, got {self.channels_last!r}")
        if self.image_shape is not None:
            shape = self._given_shape(n_features)
        elif self.scaling_ == "pixels":
            shape = self._infer_shape(n_features)
        else:
            return (1, 1, n_features), False
        return shape, bool(self.channels_last) and shape[0] > 1

    def _given_shape(self, n_features: int) -> tuple[int, int, int]:
        shape = tuple(int(s) for s in self.image_shape)
        if len(shape) not in (2, 3) or math.prod(shape) != n_features:
            raise ValueError(f"image_shape {self.image_shape}: expected (H, W), (H, W, C) or (C, H, W) with "
                             f"{n_features} values in all, one per feature")
        if len(shape) == 2:
            return (1, *shape)
        if self.channels_last:
            return (shape[2], shape[0], shape[1])  # (H, W, C) -> (C, H, W)
        if self.channels_last is False or shape[0] == 1:
            return shape
        if shape[2] == 1:
            return (1, shape[0], shape[1])  # one channel: both orders are the same
        raise ValueError(f"image_shape {self.image_shape}: is it (C, H, W) or (H, W, C)? Colour rows can be "
                         "flattened either way; say which with channels_last=True (H, W, C: NumPy arrays from "
                         "Pillow or OpenCV) or channels_last=False (C, H, W: PyTorch)")

    def _infer_shape(self, n_features: int) -> tuple[int, int, int]:
        for channels in GREY_OR_COLOUR:
            side = math.isqrt(n_features // channels)
            if channels * side * side != n_features:
                continue
            if channels > 1 and self.channels_last is None:
                raise ValueError(f"rows of {n_features} pixels: colour images {side}x{side}, flattened as "
                                 f"({side}, {side}, {channels}) (NumPy arrays from Pillow or OpenCV) or as "
                                 f"({channels}, {side}, {side}) (PyTorch)? Say which with channels_last=True or "
                                 "channels_last=False")
            return (channels, side, side)
        raise ValueError(f"cannot infer the image shape of {n_features} pixels (not H*H or 3*H*H); "
                         "give image_shape=(H, W), or (H, W, C) with channels_last=True")

    def _fit_scaling(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``center_, scale_`` such that ``(X - center_) / scale_`` is in the model's range."""
        from aekit.pixels import to_model

        d = X.shape[1]
        if self.scaling_ in ("standard", "none"):
            if self.scaling_ == "none":
                return np.zeros(d), np.ones(d)
            std = X.std(axis=0, dtype=np.float64)
            return X.mean(axis=0, dtype=np.float64), np.where(std > 0, std, 1.0)
        lo, hi = to_model(np.array([0, 255], np.uint8), self.config_.data.scale).tolist()  # the model's range
        if self.scaling_ == "pixels":
            self._check_pixels(X)
            data_min, span = np.zeros(d), np.ones(d)  # float pixels are in [0, 1]
        else:
            data_min = X.min(axis=0).astype(np.float64)
            span = X.max(axis=0).astype(np.float64) - data_min
            span[span == 0] = 1.0  # a constant feature maps to lo
        scale = span / (hi - lo)
        return data_min - lo * scale, scale

    @staticmethod
    def _check_pixels(X: np.ndarray) -> None:
        top = 255 if X.dtype.kind in "ui" else 1
        if X.size and (X.min() < 0 or X.max() > top):
            kind = "integer pixels must be in [0, 255]" if top == 255 else "float pixels must be in [0, 1]"
            raise ValueError(f"scaling 'pixels': {kind}, got values in [{X.min()}, {X.max()}]")

    def _split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Training rows and the rows the per-epoch test losses are computed on."""
        frac = self.validation_fraction
        if not 0 <= frac < 1:
            raise ValueError(f"validation_fraction: must be in [0, 1), got {frac}")
        if frac == 0:
            return np.arange(n), np.arange(min(n, MONITOR_ROWS))
        n_val = min(max(1, round(n * frac)), n - 1)
        if n_val < 1:
            raise ValueError(f"validation_fraction {frac}: needs at least 2 samples, got {n}")
        order = np.random.default_rng(self.config_.train.seed).permutation(n)
        return order[n_val:], order[:n_val]

    # ----------------------------------------------------------------- the model's side

    def _to_model(self, X: np.ndarray):
        """Validated rows ``(N, D)`` as a float32 CPU tensor ``(N, C, H, W)`` in the model's range."""
        import torch

        from aekit.pixels import to_model

        if self.scaling_ == "pixels":
            self._check_pixels(X)
            if X.dtype.kind in "ui":
                return self._as_images(to_model(X.astype(np.uint8), self.config_.data.scale))
        return self._as_images(torch.from_numpy(((X - self.center_) / self.scale_).astype(np.float32)))

    def _as_images(self, x):
        """Rows ``(N, D)`` as ``(N, C, H, W)``, from ``(N, H, W, C)`` when the rows are channels-last."""
        c, h, w = self.input_shape_
        if self.channels_last_:
            return x.reshape(len(x), h, w, c).permute(0, 3, 1, 2).contiguous()  # (N, H, W, C) -> (N, C, H, W)
        return x.reshape(len(x), c, h, w)

    def _as_rows(self, x: np.ndarray) -> np.ndarray:
        """Images ``(N, C, H, W)`` as rows ``(N, D)`` in the training rows' order; :meth:`_as_images` undone."""
        if self.channels_last_:
            x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
        return x.reshape(len(x), -1)

    def _map(self, X: np.ndarray, fn) -> np.ndarray:
        """``fn`` over the model-range images of validated rows ``X`` (:func:`_in_chunks`)."""
        return _in_chunks(self.model_, fn, self._to_model(X))

    def _validate(self, X) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype="numeric", reset=False)

    # ----------------------------------------------------------------- scikit-learn's methods

    def transform(self, X):
        """Codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples, n_components_)
            float32 for float32 ``X``, else float64: the model's flat codes
            (``AutoEncoder.flat_codes``; a grid code flattened). A VAE gives the mean code.
        """
        X = self._validate(X)
        model = self.model_
        return self._map(X, lambda x: model.flat_codes(model.encode(x))).astype(_out_dtype(X))

    def inverse_transform(self, X):
        """Decode codes back to the space of the training data.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components_)
            Codes, as :meth:`transform` gives.

        Returns
        -------
        ndarray of shape (n_samples, n_features_in_)
            In the units of the training data; ``"pixels"`` gives floats in ``[0, 1]`` (unclipped).
        """
        import torch

        check_is_fitted(self)
        z = check_array(X, dtype=(np.float64, np.float32))
        if z.shape[1] != self.n_components_:
            raise ValueError(f"X has {z.shape[1]} features, but inverse_transform expects codes of "
                             f"{self.n_components_}")
        model = self.model_
        x = self._as_rows(_in_chunks(model, lambda z: model.decode(model.unflat_codes(z)),
                                     torch.from_numpy(z.astype(np.float32))))
        return (x * self.scale_ + self.center_).astype(z.dtype)

    def reconstruction_error(self, X):
        """Mean squared error of each row's reconstruction, in the model's scaled units.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            float64; per feature, after the scaling (so ``"minmax"`` and ``"pixels"`` errors
            are in units of the ``[0, 1]`` range).
        """
        X = self._validate(X)
        model = self.model_
        # summed in float64: a float32 sum's rounding depends on where a row sits in the batch
        return self._map(X, lambda x: (model.decode(model.encode(x)) - x).pow(2).flatten(1).double().mean(1))

    def score(self, X, y=None):
        """The negative mean reconstruction error of ``X`` (higher is better, as scikit-learn's scorers want).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        return -float(np.mean(self.reconstruction_error(X)))

    @property
    def _n_features_out(self):
        return self.n_components_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    # ----------------------------------------------------------------- pickling

    def __getstate__(self):
        """The estimator's state with ``model_`` as safetensors bytes (never a pickled torch module)."""
        state = dict(super().__getstate__())  # object.__getstate__ gives __dict__ itself: never change that
        if "model_" in state:
            from safetensors.torch import save

            weights = {k: v.detach().cpu().contiguous() for k, v in state["model_"].state_dict().items()}
            state["model_"] = {"safetensors": save(weights)}
        return state

    def __setstate__(self, state):
        if isinstance(state.get("model_"), dict):
            from safetensors.torch import load

            from aekit.models import create_model

            model = create_model(state["config_"].model, state["input_shape_"])
            model.load_state_dict(load(state["model_"]["safetensors"]))
            state = {**state, "model_": model.eval()}
        super().__setstate__(state)


class CodeClusterer(ClusterMixin, BaseEstimator):
    """Clusters of ``X`` found in an autoencoder's codes: N2D (UMAP + Gaussian mixture), the mixture alone,
    or IDEC / DEC (the encoder trained further to cluster).

    ``fit`` trains a clone of ``transformer`` (default ``AutoencoderTransformer()``) on ``X``, then:

    - ``"n2d"``, ``"n2d-merge"``, ``"gmm"``: clusters its codes with
      :func:`aekit.evaluation.clustering.cluster_codes`: into ``n_clusters``, or, when ``None``, into the number
      it estimates (``n2d`` and ``n2d-merge``: the highest
      silhouette in the UMAP embedding; ``gmm``: the lowest BIC; over ``2..k_max``);
    - ``"idec"``, ``"dec"``: refines the encoder on ``X`` with IDEC's loss (reconstruction + 0.1 x
      the clustering KL; Guo et al. 2017) or DEC's (the KL alone; Xie et al. 2016), from k-means
      centroids on its codes, through aekit's training loop
      (:func:`aekit.evaluation.clustering.cluster_by_refining`); each row's cluster is then the
      largest soft assignment of its refined code (DEC eq. 1). ``n_clusters`` is required;
      ``refine_epochs`` passes over ``X`` (default: about 2,000 steps of 256 rows, as
      :mod:`aekit.training.deep_clustering` does).

    Clusters are numbered largest first on the training rows.

    Parameters
    ----------
    transformer : AutoencoderTransformer, optional
        The autoencoder and its training settings, cloned at ``fit``.
    n_clusters : int, optional
        The number of clusters; ``None`` estimates it (``n2d``, ``n2d-merge`` and ``gmm`` only).
    method : {"n2d", "n2d-merge", "gmm", "idec", "dec"}, default "n2d"
    k_max : int, default 15
        The largest number of clusters tried when estimating it.
    refine_epochs : int, optional
        ``idec`` / ``dec``: passes over ``X`` of the refinement.
    random_state : int, default 0

    Attributes
    ----------
    transformer_ : AutoencoderTransformer
        The fitted transformer; for ``idec`` / ``dec``, with the refined autoencoder, so that its
        ``transform`` gives the refined codes.
    labels_ : ndarray of shape (n_samples,)
    probabilities_ : ndarray of shape (n_samples,)
        The mixture's probability of each row's cluster (``idec`` / ``dec``: its soft assignment).
    n_clusters_ : int
    centroids_ : ndarray of shape (n_clusters_, n_components)
        ``idec`` / ``dec`` only: the refined centroids in code space, in the clusters' numbering.
    clustering_ : aekit.evaluation.clustering.Clustering
        The whole result (distances, how k was chosen, the method's parameters).

    >>> from aekit.sklearn import AutoencoderTransformer, CodeClusterer
    >>> clusterer = CodeClusterer(AutoencoderTransformer(latent_dim=10, epochs=5), n_clusters=10)
    >>> labels = clusterer.fit_predict(X)  # doctest: +SKIP
    >>> idec = CodeClusterer(AutoencoderTransformer(latent_dim=10, epochs=5), n_clusters=10, method="idec")
    >>> idec.fit(X).predict(X_new)  # doctest: +SKIP
    """

    def __init__(self, transformer=None, *, n_clusters=None, method="n2d", k_max=15, refine_epochs=None,
                 random_state=0):
        self.transformer = transformer
        self.n_clusters = n_clusters
        self.method = method
        self.k_max = k_max
        self.refine_epochs = refine_epochs
        self.random_state = random_state

    def fit(self, X, y=None):
        """Train the transformer on ``X`` and cluster the codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        from sklearn.base import clone

        from aekit.evaluation.clustering import ALL_METHODS, REFINING, cluster_codes

        if self.method not in ALL_METHODS:  # before training, not after
            raise ValueError(f"method: {self.method!r} is not allowed; choose one of: {', '.join(ALL_METHODS)}")
        if self.method in REFINING and self.n_clusters is None:
            raise ValueError(f"n_clusters: method {self.method!r} needs the number of clusters; give n_clusters")
        transformer = AutoencoderTransformer() if self.transformer is None else self.transformer
        self.transformer_ = clone(transformer).fit(X)
        self.n_features_in_ = self.transformer_.n_features_in_
        z = self.transformer_.transform(X)  # (n_samples, latent_dim)
        if self.method in REFINING:
            return self._refine(X, z)
        self.clustering_ = cluster_codes(z, self.n_clusters, method=self.method, seed=self.random_state,
                                         k_max=self.k_max)
        self.labels_ = self.clustering_.labels_
        self.probabilities_ = self.clustering_.probabilities_
        self.n_clusters_ = self.clustering_.n_clusters_
        return self

    def _refine(self, X, z: np.ndarray):
        """IDEC / DEC on the fitted transformer's codes ``z`` ``(n, d)`` of ``X``; the transformer then holds the
        refined autoencoder, and ``labels_`` are :meth:`predict`'s on ``X``.
        """
        import torch

        from aekit.evaluation.clustering import _by_size, cluster_by_refining

        ae = self.transformer_
        images = ae._to_model(ae._validate(X)).numpy()  # (n, C, H, W) float32 in the model's range
        with torch.random.fork_rng(devices=[]):  # refine seeds the global generator; the caller's is left alone
            self.clustering_, refined = cluster_by_refining(
                ae.model_, images, z, int(self.n_clusters), method=self.method, seed=self.random_state,
                k_max=self.k_max, scale=ae.config_.data.scale, epochs=self.refine_epochs, start_from_z=True)
        k = refined.module.n_clusters
        _, _, order = _by_size(refined.labels_, np.zeros((len(z), k)))  # (k,) the module's centroid of each number
        self.centroids_ = refined.module.centroids.detach().cpu().numpy()[order].astype(np.float64)  # (k, d)
        ae.model_ = refined.module.autoencoder.eval()  # ae is fit's own clone: the caller's transformer is untouched
        self.n_clusters_ = k
        q = self._soft_assignment(z=self.transformer_.transform(X))  # (n, k)
        self.labels_ = q.argmax(1)
        self.probabilities_ = q.max(1)
        return self

    def _soft_assignment(self, z: np.ndarray) -> np.ndarray:
        """``q`` ``(n, k)`` of codes ``z`` ``(n, d)`` to ``centroids_`` (DEC eq. 1), as the refinement computed it."""
        import torch

        from aekit.models.idec import soft_assignment

        q = soft_assignment(torch.from_numpy(np.asarray(z, np.float32)),
                            torch.from_numpy(self.centroids_.astype(np.float32)))
        return q.double().numpy()

    def predict(self, X):
        """The cluster of each row of ``X`` (``idec`` / ``dec``): the largest soft assignment of its refined code.

        ``n2d``, ``n2d-merge`` and ``gmm`` keep no model of the clusters (UMAP's embedding and the mixture are fitted to
        the training codes), so they refuse: use ``fit_predict``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
            int64 cluster numbers in ``0..n_clusters_-1``, as ``labels_``.
        """
        check_is_fitted(self)
        if not hasattr(self, "centroids_"):
            raise ValueError(f"predict: method {self.method!r} clusters the training codes only; use fit_predict, "
                             "or method 'idec' or 'dec', which can assign new rows")
        return self._soft_assignment(self.transformer_.transform(X)).argmax(1)


def _in_chunks(model, fn, x) -> np.ndarray:
    """``fn`` over ``x`` (a CPU tensor) in eval mode, in chunks of exactly :data:`CHUNK` rows; the
    results concatenated as a numpy array of ``fn``'s dtype.

    The last chunk is padded with zeros, so that every forward pass has the same shape: a
    row's result is then the same, bit for bit, whichever rows share its call (float32
    matrix products of another number of rows round differently). Each row goes through
    the model alone (eval mode, no batch statistics), so the padding changes nothing else.
    Measured on the CPU with 1 to 3 threads; with 5 or more, a conv decoder's pixel can
    still move by one float32 ulp with the row's place in the chunk.
    """
    import torch

    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(x), CHUNK):
            part = x[start:start + CHUNK]  # (n, ...), n <= CHUNK
            n = len(part)
            if n < CHUNK:
                part = torch.cat([part, part.new_zeros((CHUNK - n, *part.shape[1:]))])  # (CHUNK, ...)
            out.append(fn(part.to(device))[:n].cpu().numpy())
    return np.concatenate(out)


def _out_dtype(X: np.ndarray):
    return X.dtype if X.dtype in (np.float32, np.float64) else np.float64


__all__ = ["CHUNK", "SCALINGS", "AutoencoderTransformer", "CodeClusterer"]
