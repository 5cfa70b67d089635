"""One training loop for every model.

The loop knows only ``model(x) -> ModelOutput`` and minimises ``ModelOutput.loss``,
plus generic hooks any model may define (it never learns which model it has):
``model.on_train_step(epoch_progress)`` before each step (schedules such as a KL
warm-up), ``model.after_optimizer_step()`` after each (an EMA update), and
``model.pretraining_stages()``, greedy stages that this same loop trains, one after
another, before the main run. Each stage and the main run is a :class:`Phase` with
its own optimiser.

Loss terms. Whatever named terms ``ModelOutput.terms`` holds are averaged over the
epoch's images and reported as ``train_<name>`` and ``test_<name>`` (``recon`` as
``train_recon_loss``); ``train_reg_loss`` is the sum of every term but ``recon``.

The images sit on the training device as one uint8 tensor (:class:`Resident`); a
batch is an index slice scaled to float there, so no per-sample Python objects are
made and nothing inside a step waits for the device. A source with the same
``batches`` method can stream instead.

Everything a resume needs is in :meth:`Trainer.state_dict`: weights, optimiser, the
torch and shuffling generators, the loop's position down to the batch, the current
epoch's per-step losses and the callbacks' own state. :meth:`Trainer.load_state_dict`
before :meth:`Trainer.fit` continues from there, and the result is the same, bit for
bit on the same device, as a run that was never stopped.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import threading
import time
from typing import Callable, Sequence

import torch

from aekit.config import TrainConfig
from aekit.errors import ConfigError, Diverged, Interrupted
from aekit.models.base import check_term_names, monitoring
from aekit.models.dense import has_hooks
from aekit.pixels import to_model
from aekit.training.augment import augment
from aekit.training.callbacks import Callback
from aekit.training.distributed import World
from aekit.training.optim import make_optimizer
from aekit.training.precision import Precision, resolve_precision
from aekit.training.schedule import lr_at, planned_epochs, scheduled, steps_per_epoch

CHECK_EVERY = 50  # steps between the one host sync that notices a non-finite loss before the epoch ends
SYNC_EVERY = 16  # with many processes: steps between the collectives that agree on a checkpoint or a Ctrl-C


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda, then mps, then cpu. Asking for one that is not there is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device: 'cuda' requested but no CUDA device is available; use auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError("train.device: 'mps' requested but MPS is not available; use auto or cpu")
    return torch.device(name)


@dataclasses.dataclass
class Phase:
    """A stretch of training with its own optimiser: a pre-training stage, or the main run."""

    name: str
    module: torch.nn.Module  # what this phase trains; its forward returns a ModelOutput
    epochs: int
    main: bool


class Resident:
    """Images held on the training device as one tensor; a batch is a slice of it.

    A shuffled pass gathers the images once, in the shuffled order, when that copy is at
    most :attr:`copy_limit` bytes; the batches are then contiguous views of it, with no
    gather per step. The gather is ``index_select`` (on the CPU about three times as fast
    as indexing with the permutation), and the copy keeps the stored dtype: uint8 images
    are scaled a batch at a time by the trainer, which costs no more than scaling the whole
    copy and keeps it a quarter of the size.
    """

    copy_limit = 1 << 30

    def __init__(self, images: torch.Tensor):
        self.images = images  # (N, C, H, W) uint8, or float in the model's range

    def __len__(self) -> int:
        return len(self.images)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def batches(self, batch_size: int, order: torch.Tensor | None = None, start: int = 0):
        """Batches of ``batch_size`` images, in ``order`` (a permutation) or as stored, from image ``start``."""
        images = self.images
        if order is not None and images[:1].nbytes * (len(order) - start) <= self.copy_limit:
            ordered = images.index_select(0, order[start:])  # (n, C, H, W), once per pass
            for i in range(0, len(ordered), batch_size):
                yield ordered[i:i + batch_size]
            return
        for i in range(start, len(order) if order is not None else len(images), batch_size):
            yield images.index_select(0, order[i:i + batch_size]) if order is not None else images[i:i + batch_size]


def term_metrics(names: Sequence[str], means: Sequence[float], prefix: str = "") -> dict[str, float]:
    """Metrics of loss terms ``names`` with their epoch means: ``recon_loss`` (the ``recon`` term, 0 without
    one), ``reg_loss`` (the sum of the others, 0 without any) and one ``<name>`` per other term, after ``prefix``.
    """
    values = dict(zip(names, means))
    others = {k: v for k, v in values.items() if k != "recon"}
    return {f"{prefix}recon_loss": values.get("recon", 0.0), f"{prefix}reg_loss": sum(others.values(), 0.0),
            **{f"{prefix}{k}": v for k, v in others.items()}}


def as_source(x):
    return x if hasattr(x, "batches") else Resident(x)


class Trainer:
    """Fits ``model`` on images already on its device.

    Readable while it runs: ``model``, ``config``, ``phase`` (``phase.main`` is false in
    pre-training), ``epoch`` (the epoch in progress, from 1), ``batch`` (batches done in
    it), ``step`` (optimisation steps of the main run), ``history`` (one metrics dict per
    finished epoch) and ``resumed``. A callback may set ``should_stop``.

    >>> trainer = Trainer(model, TrainConfig(epochs=1), scale="unit")  # doctest: +SKIP
    >>> history = trainer.fit(x_train, x_test)  # doctest: +SKIP
    """

    eval_batch_size = 1000
    hand_gradients = True  # use a model's gradient_function where it has one (False: autograd always)

    def __init__(self, model, config: TrainConfig, scale: str = "unit", callbacks: Sequence[Callback] = (),
                 precision: str | Precision | None = None, world: World | None = None,
                 log: Callable[[str], None] | None = None):
        self.model = model
        self.log = log or (lambda _: None)  # one-line notes (a compile that failed)
        self.world = world or World()
        self.config = config
        self.scale = scale
        self.callbacks = list(callbacks)
        self.device = next(model.parameters()).device
        # a resumed run keeps the arithmetic it started with (``auto`` may mean another today)
        if not isinstance(precision, Precision):
            name = precision or resolve_precision(config.precision, self.device, model)
            precision = Precision(name, self.device, skip_non_finite=config.on_nan == "skip")
        self.precision = precision
        self.history: list[dict] = []
        self.phase: Phase | None = None
        self.phase_index = 0
        self.epoch = 0
        self.batch = 0
        self.step = 0
        self.should_stop = False
        self.finished = False
        self.resumed = False
        self.optimizer = None
        self._resume = None  # (tensors, meta) from load_state_dict, used when the loop starts
        self._gen = None  # the shuffling generator of the current phase
        self._aug_gen = None  # the augmentation generator of the main run (its own, saved in the checkpoint)
        self.total_steps = 0  # the main run's planned optimiser steps: the length of the learning-rate schedule
        self._val = None  # the held-out validation source, when there is one
        self._epoch_start_state = None  # its state when the current epoch began
        self._between_epochs = True
        self._terms: list[torch.Tensor] = []  # per step: (loss, *terms, *pad, counted) x batch size, on the device
        self._term_names: tuple[str, ...] = ()  # the model's loss terms, the columns of ``_terms`` after loss
        self._pad: list[torch.Tensor] = []  # zero columns after a one-term model's term (see _name_terms)
        self._epoch_elapsed = 0.0
        self._last_finite_loss: float | None = None
        self._interrupted = False
        self._unit = torch.ones((), device=self.device)
        self._net = None  # the phase's module as the forward pass sees it (in DDP with many processes)
        self._compile_pending = False  # the compiled forward has not run yet: its first call may fail
        self._by_hand = None  # the phase's module's gradient_function, where this run can use it
        self._after_step = None  # the phase's module's after_optimizer_step, if it has one
        self._by_hand_tried = False  # whether it has taken a step yet (its first is tried, with autograd behind it)

    def _call(self, hook: str, *args) -> None:
        for cb in self.callbacks:
            getattr(cb, hook)(self, *args)

    # ----------------------------------------------------------------- the loop

    def phases(self) -> list[Phase]:
        """The model's pre-training stages (those with epochs), then the main run."""
        stages = getattr(self.model, "pretraining_stages", None)
        found = [Phase(s.name, s.module, s.epochs, False) for s in (stages() if stages else ()) if s.epochs >= 1]
        return [*found, Phase("train", self.model, self.config.epochs, True)]

    def fit(self, x_train, x_test, x_val=None) -> list[dict]:
        """Train every phase for its epochs (continuing a loaded state); returns the main run's history.

        ``x_val``, when given, is scored after every epoch as ``val_*`` metrics (callbacks choose
        the best weights and stop early by it). With a ``steps`` budget in the config, the main
        run's epochs are the whole epochs that reach it (``config.epochs`` is set to them).
        """
        train, test = as_source(x_train), as_source(x_test)
        self._val = as_source(x_val) if x_val is not None else None
        if self.config.steps:
            self.config = dataclasses.replace(self.config, epochs=planned_epochs(self.config, len(train)))
        self.total_steps = self.config.epochs * steps_per_epoch(len(train), self.config.batch_size)
        if self._aug_gen is None:  # each process its own draws (they augment different images)
            self._aug_gen = torch.Generator().manual_seed(self.config.seed + 1 + 7919 * self.world.rank)
        phases = self.phases()
        if self._resume is None and self.step == 0 and self.phase_index == 0:
            self._init_from_data(train)
        with self._catch_sigint(), self.precision.numerics():
            try:
                for index in range(self.phase_index, len(phases)):
                    self.phase_index, self.phase = index, phases[index]
                    self._run_phase(train, test)
                    if self.should_stop:
                        break
                self.finished = True
            finally:
                self._call("on_fit_end")
        return self.history

    def _init_from_data(self, train) -> None:
        """A new run's model gets its sample of training images (``AutoEncoder.init_from_data``), if it asks."""
        wanted = min(int(getattr(self.model, "init_sample", 0) or 0), len(train))
        if wanted <= 0:
            return
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(self.config.seed + 0x1417))
        sample = next(iter(train.batches(wanted, order=order[:wanted].to(train.device))))  # (n, C, H, W)
        self.model.init_from_data(to_model(sample, self.scale).to(self.device))

    def _run_phase(self, train, test) -> None:
        phase = self.phase
        self._net = self.world.wrap(phase.module, self.device)
        # torch.compile (inductor) fuses the elementwise work between the products: pcamlp's step on a CPU takes
        # 0.88x the time after up to half a minute of compiling (benchmarks/compile.py). One process, the main run only.
        self._compile_pending = self.config.compile and phase.main and not self.world.distributed
        if self._compile_pending:
            self._net = torch.compile(self._net)
        self._by_hand, self._by_hand_tried = self._gradient_function(phase.module), False
        self._after_step = getattr(phase.module, "after_optimizer_step", None)
        self.optimizer = make_optimizer(phase.module, self.config)
        self.precision.start()
        self._gen = torch.Generator().manual_seed(self.config.seed)
        if self._resume is not None:
            self._restore_loop_state()
        else:
            self.epoch, self.batch, self._between_epochs = 0, 0, True
        if phase.main:
            self._call("on_fit_start")
        first = self.epoch + 1 if self._between_epochs else self.epoch
        for epoch in range(first, phase.epochs + 1):
            if self._between_epochs:
                self._begin_epoch(epoch)
            metrics = self._run_epoch(train, test)
            self._between_epochs = True
            if phase.main:
                self.history.append(metrics)
                self._call("on_epoch_end", metrics)
            else:
                self._call("on_pretrain_epoch_end", phase.name, {**metrics, "epochs": phase.epochs})
            self._stop_if_interrupted()
            if self.should_stop:
                break

    def _gradient_function(self, module):
        """The module's hand-written gradients (``AutoEncoder.gradient_function``) for fp32 training in
        one process on the CPU, where they are tested to equal autograd's; else ``None``. Also ``None``
        where a hook is registered on the module, its layers or its parameters: autograd runs them.
        """
        found = getattr(module, "gradient_function", None)
        if not self.hand_gradients or found is None or self.precision != "fp32" or self.world.distributed \
                or self.device.type != "cpu" or has_hooks(module):
            return None
        return found()

    def _begin_epoch(self, epoch: int) -> None:
        self.epoch, self.batch, self._terms, self._epoch_elapsed = epoch, 0, [], 0.0
        if self._by_hand is not None and has_hooks(self.phase.module):  # registered by a callback since
            self._by_hand = None
        self._epoch_start_state = self._gen.get_state()
        self._between_epochs = False

    def _run_epoch(self, train, test) -> dict:
        phase, bs, n, world = self.phase, self.config.batch_size, len(train), self.world
        steps = -(-n // bs)
        start = time.perf_counter() - self._epoch_elapsed
        if phase.main:
            self._call("on_epoch_start", steps)
        on_train_step = getattr(phase.module, "on_train_step", None)
        mode = self.config.augment if phase.main else "none"
        groups = self.optimizer.param_groups if phase.main and scheduled(self.config) else ()
        perm = torch.randperm(n, generator=self._gen).to(train.device)  # also on resume: it moves the generator on
        local_bs = bs // world.size  # this rank's part of every global batch (see aekit.training.distributed)
        batches = train.batches(local_bs, perm[world.rank::world.size], start=self.batch * local_bs)
        phase.module.train()
        while self.batch < steps:
            if on_train_step is not None:
                on_train_step(self.epoch - 1 + self.batch * bs / n)
            x = next(batches, None)  # None: this rank has no image in the last, smallest global batch
            share = None if not world.distributed else world.size * (0 if x is None else len(x)) / min(
                bs, n - self.batch * bs)
            for group in groups:  # a function of the step alone: nothing to save for a resume
                group["lr"] = lr_at(self.config, self.step, self.total_steps)
            if x is not None and mode != "none":
                x = augment(x, mode, self._aug_gen, self.config.shift)
            loss = self._train_step(to_model(x, self.scale) if x is not None else None, share)
            self.batch += 1
            self.step += phase.main
            self._epoch_elapsed = time.perf_counter() - start
            self._call("on_step_end", loss)
            if self.batch % CHECK_EVERY == 0 and not self.precision.skips \
                    and world.any(not torch.isfinite(loss), self.device):
                self._raise_diverged()
            self._stop_if_interrupted()
        metrics = {"epoch": self.epoch, "step": self.step if phase.main else self.batch,
                   **self._train_means(n), **{f"test_{k}": v for k, v in self.evaluate(test, phase.module).items()}}
        if self._val is not None and phase.main:
            metrics.update({f"val_{k}": v for k, v in self.evaluate(self._val, phase.module).items()})
        if not all(math.isfinite(v) for k, v in metrics.items() if k.startswith("test_")):
            skipped = metrics.get("skipped_steps", 0)  # skipping cannot help weights that are finite but make NaN
            why = f"; {skipped} of {steps} steps were skipped, but the weights now give non-finite outputs" \
                if skipped else ""
            raise Diverged(f"epoch {self.epoch}: the test loss is not finite ({metrics['test_loss']}){why}; "
                           f"try a lower lr (now {self.config.lr:g})", params=("lr",))
        metrics["seconds"] = round(time.perf_counter() - start, 4)
        return metrics

    def _train_step(self, x: torch.Tensor | None, share: float | None = None) -> torch.Tensor:
        """One optimisation step on ``x`` ``(B, C, H, W)``. With many processes, ``share`` weights this
        rank's loss (its images over the global batch's, times the number of ranks), so that DDP's mean
        of the gradients is the global batch's; ``x`` is ``None`` on a rank with no image in the batch.
        """
        if x is None:
            return self._empty_step()
        out = self._hand_step(x) if self._by_hand is not None else None
        if out is None:
            with self.precision.autocast():
                out = self._forward(x)
            self.optimizer.zero_grad(set_to_none=True)
            self.precision.backward(out.loss if share is None else out.loss * share)
        # whether this step counted (None: where no step can be skipped)
        ok = self.precision.step(self.optimizer, out.loss, self.phase.module.parameters())
        self._after_optimizer_step()
        if tuple(out.terms) != self._term_names:
            self._name_terms(tuple(out.terms))
        terms = [t.detach() for t in out.terms.values()]
        if ok is None:  # (loss, *terms, images counted) x batch size, in one op and a product
            self._terms.append(torch.stack([out.loss.detach(), *terms, *self._pad, self._unit]).float() * len(x))
        else:
            values = torch.stack([out.loss.detach(), *terms, *self._pad]).float()
            self._terms.append(torch.cat([torch.where(ok, values, 0.0), ok.float().reshape(1)]) * len(x))
        return out.loss.detach()

    def _after_optimizer_step(self) -> None:
        if self._after_step is not None:
            with torch.no_grad():
                self._after_step()

    def _name_terms(self, names: tuple[str, ...]) -> None:
        """Take ``names`` as the columns of the per-step rows; rows already there (restored from a
        checkpoint) are rearranged to match, by name. A checkpoint from before named terms has the
        columns ``recon``, ``reg``: its ``reg`` goes to the model's one penalty, if it has one.

        A row has at least four columns: a model with one term gets a zero column after it. The
        epoch's sums over the rows then take the same bits as before terms were named, when every row
        was (loss, recon, reg, counted): a sum down a column of a 3-wide tensor rounds differently.
        """
        check_term_names(names, f"model {getattr(self.phase.module, 'name', type(self.phase.module).__name__)}")
        old = self._term_names
        if self._terms and old:
            penalties = [n for n in names if n != "recon"]
            legacy = {penalties[0]: "reg"} if len(penalties) == 1 and "reg" in old else {}
            rows = torch.stack(self._terms)  # (steps, loss + old terms + pad + counted)
            zero = torch.zeros_like(rows[:, 0])
            columns = [rows[:, 1 + old.index(legacy.get(n, n))] if legacy.get(n, n) in old else zero for n in names]
            pad = [zero] * max(0, 2 - len(names))
            self._terms = list(torch.stack([rows[:, 0], *columns, *pad, rows[:, -1]], 1).unbind(0))
        self._term_names = names
        self._pad = [self._unit.new_zeros(())] * max(0, 2 - len(names))

    def _forward(self, x: torch.Tensor):
        """The training forward pass; the first call of a compiled one compiles it, and where that fails (no C++
        compiler, an operation inductor lacks) the phase goes on without compiling, said in one line.
        """
        if not self._compile_pending:
            return self._net(x)
        try:
            out = self._net(x)
        except Exception as exc:  # noqa: BLE001 -- whatever the compiler raised: the eager model is the same function
            self._net = self.world.wrap(self.phase.module, self.device)
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            first = next((line for line in lines if not line.endswith("raised:")), "")[:200]  # past dynamo's header
            self.log(f"warning: compile failed ({type(exc).__name__}: {first}); training without it (--no-compile "
                     f"skips trying)")
            out = self._net(x)
        self._compile_pending = False
        return out

    def _hand_step(self, x: torch.Tensor):
        """The step's forward and backward in one, by the model's hand-written gradients; ``None`` where
        their first step fails, and from then on autograd takes every step of the phase.
        """
        if self._by_hand_tried:
            return self._by_hand(x)
        try:
            out = self._by_hand(x)
        except (RuntimeError, TypeError, ValueError):  # anything its tests did not cover: autograd's turn
            self._by_hand = None
            return None
        self._by_hand_tried = True
        return out

    def _empty_step(self) -> torch.Tensor:
        """Take part in a step's gradient average with zero gradients (DDP needs every rank in every step)."""
        c, h, w = self.model.input_shape
        out = self._net(torch.zeros(0, c, h, w, device=self.device))
        if tuple(out.terms) != self._term_names:
            self._name_terms(tuple(out.terms))
        self.optimizer.zero_grad(set_to_none=True)
        self.precision.backward((out.recon_x.sum() + out.z.sum()).mul(0.0))
        # the averaged gradient is the other ranks' share: the same step as theirs
        self.precision.step(self.optimizer, torch.zeros((), device=self.device), self.phase.module.parameters())
        self._after_optimizer_step()
        self._terms.append(torch.zeros(len(self._term_names) + len(self._pad) + 2, device=self.device))
        return torch.zeros((), device=self.device)

    def _train_means(self, n: int) -> dict[str, float]:
        rows = torch.stack(self._terms) if self._terms else torch.zeros(1, 4, device=self.device)
        loss, *sums, counted = self.world.all_sum(rows.sum(0)).tolist()
        if not self.precision.skips and not math.isfinite(loss):
            self._raise_diverged(rows)
        if counted == 0:
            raise Diverged(f"epoch {self.epoch}: every step had a non-finite loss or gradient; "
                           f"try a lower lr (now {self.config.lr:g})", params=("lr",))
        last = self.world.all_sum(rows[-1].clone())
        self._last_finite_loss = float(last[0] / max(float(last[-1]), 1.0))
        out = {"train_loss": loss / counted, **term_metrics(self._term_names, [v / counted for v in sums], "train_")}
        if self.precision.skips:
            out["skipped_steps"] = int(self.world.all_sum(rows[:, -1].clone()).eq(0).sum())
        return out

    def _raise_diverged(self, rows: torch.Tensor | None = None) -> None:
        rows = self.world.all_sum((torch.stack(self._terms) if rows is None else rows).clone())  # every rank's
        losses = (rows[:, 0] / rows[:, -1].clamp_min(1)).tolist()
        first = next(i for i, v in enumerate(losses) if not math.isfinite(v))
        last = losses[first - 1] if first > 0 else self._last_finite_loss
        step = self.step - self.batch + first + 1 if self.phase.main else first + 1
        where = f"epoch {self.epoch} step {step}" if self.phase.main else f"{self.phase.name} epoch {self.epoch}"
        before = f"the last finite loss was {last:.6g}" if last is not None else "no step had a finite loss"
        raise Diverged(f"{where}: the loss became {losses[first]} ({before}); the run stopped without saving "
                       f"these weights; try a lower lr (now {self.config.lr:g}) or on_nan skip",
                       params=("lr", "on_nan"))

    def assert_finite(self) -> None:
        """Raise :class:`Diverged` if the weights or this epoch's losses so far are not finite (a host sync)."""
        if self._terms and not bool(torch.isfinite(torch.stack(self._terms)).all()) and self.config.on_nan == "stop":
            self._raise_diverged()
        params = [p for p in self.model.parameters()]
        if not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise Diverged(f"epoch {self.epoch}: the weights are not finite; the run stopped without saving them; "
                           f"try a lower lr (now {self.config.lr:g})", params=("lr",))

    @torch.no_grad()
    def evaluate(self, x, module=None) -> dict[str, float]:
        """Mean loss, its terms and per-pixel MSE over ``x`` in eval mode (each rank scores its share):
        ``loss``, ``recon_loss``, ``reg_loss``, ``mse`` and one key per named term but ``recon``.
        """
        module = module or self.model
        source, world = as_source(x), self.world
        was_training = module.training
        module.eval()
        sums, names = None, ()
        order = torch.arange(world.rank, len(source), world.size, device=source.device) if world.distributed else None
        with monitoring(module):  # the per-epoch scoring: a model may skip its inference steps (see AutoEncoder)
            for xb in source.batches(self.eval_batch_size, order):
                xb = to_model(xb, self.scale)
                with self.precision.autocast():
                    out = module(xb)
                mse = torch.mean((out.recon_x.float() - xb) ** 2)
                names = tuple(out.terms)
                row = torch.stack([out.loss.float(), *(t.float() for t in out.terms.values()), mse]) * len(xb)
                sums = row if sums is None else sums + row
        module.train(was_training)
        if sums is None:  # nothing to score
            return {"loss": math.nan, "recon_loss": math.nan, "reg_loss": math.nan, "mse": math.nan}
        loss, *means, mse = (world.all_sum(sums) / len(source)).tolist()
        terms = term_metrics(names, means)
        return {"loss": loss, "recon_loss": terms.pop("recon_loss"), "reg_loss": terms.pop("reg_loss"), "mse": mse,
                **terms}

    # ----------------------------------------------------------------- Ctrl-C

    @contextlib.contextmanager
    def _catch_sigint(self):
        """While training, Ctrl-C asks the loop to stop at the next step boundary (where the state is
        whole, so the callbacks can save it); a second Ctrl-C stops at once.
        """
        if threading.current_thread() is not threading.main_thread() or \
                signal.getsignal(signal.SIGINT) is signal.SIG_IGN:  # nohup, a background job: Ctrl-C is off
            yield
            return

        def handler(signum, frame):
            self._interrupted = True
            signal.signal(signal.SIGINT, previous)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def agree(self, flag: bool, every_step: bool = False) -> bool:
        """``flag``, made the same on every rank: true if it is on any. Alone, ``flag`` itself. With many
        processes it is a collective, so inside an epoch it is taken only every ``SYNC_EVERY`` steps
        (false in between) unless ``every_step``; every rank must call it at the same points.
        """
        if not self.world.distributed:
            return bool(flag)
        if not every_step and self.batch % SYNC_EVERY:
            return False
        return self.world.any(flag, self.device)

    def _stop_if_interrupted(self) -> None:
        if self.agree(self._interrupted, every_step=self._between_epochs):
            self._interrupted = False
            self._call("on_interrupt")
            where = f"epoch {self.epoch}, step {self.step}" if self.phase.main else f"{self.phase.name}"
            raise Interrupted(f"interrupted during {where}")

    # ----------------------------------------------------------------- resume

    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict]:
        """``(tensors, meta)``: everything :meth:`load_state_dict` needs to continue exactly from here."""
        tensors = {f"model/{k}": v for k, v in self.model.state_dict().items()}
        opt = self.optimizer.state_dict() if self.optimizer is not None else {"state": {}, "param_groups": []}
        scalars = {}
        for i, state in opt["state"].items():
            for key, value in state.items():
                if torch.is_tensor(value):
                    tensors[f"optimizer/{i}/{key}"] = value
                else:
                    scalars[f"{i}/{key}"] = value
        for rank, state in enumerate(self.world.gather(torch.get_rng_state())):  # each rank draws its own noise
            tensors["rng/torch" if rank == 0 else f"rng/torch/{rank}"] = state
        if torch.cuda.is_available() and self.device.type == "cuda":
            tensors.update({f"rng/cuda/{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
        between = self._between_epochs
        if self._aug_gen is not None and self.config.augment != "none":  # its state between steps is the next one's
            for rank, state in enumerate(self.world.gather(self._aug_gen.get_state())):
                tensors["rng/augment" if rank == 0 else f"rng/augment/{rank}"] = state
        if self._gen is not None:
            tensors["rng/shuffle"] = self._gen.get_state() if between else self._epoch_start_state
        if not between and self._terms:
            tensors["epoch/terms"] = torch.stack(self._terms)  # (steps, loss + terms + pad + counted)
        meta = {
            "position": {"phase": self.phase_index, "main": self.phase is None or self.phase.main,
                         "epoch": self.epoch + 1 if between else self.epoch, "batch": 0 if between else self.batch,
                         "step": self.step},
            "epoch_elapsed": 0.0 if between else self._epoch_elapsed,
            "terms": list(self._term_names),  # the columns of epoch/terms between loss and counted
            "optimizer": {"param_groups": opt["param_groups"], "scalars": scalars},
            "scaler": self.precision.state_dict(),
            "precision": self.precision.name,
            "last_finite_loss": self._last_finite_loss,
            "history": self.history,
            "callbacks": {type(cb).__name__: s for cb in self.callbacks if (s := cb.state_dict()) is not None},
        }
        return tensors, meta

    def load_state_dict(self, tensors: dict[str, torch.Tensor], meta: dict) -> None:
        """Take the state :meth:`state_dict` gave (weights now; the loop's state when :meth:`fit` starts)."""
        self.model.load_state_dict({k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")})
        pos = meta["position"]
        self.phase_index, self.step = pos["phase"], pos["step"]
        self.history = list(meta.get("history", []))
        self._last_finite_loss = meta.get("last_finite_loss")
        states = meta.get("callbacks", {})
        for cb in self.callbacks:
            if type(cb).__name__ in states:
                cb.load_state_dict(states[type(cb).__name__])
        self._resume = (tensors, meta)
        self.resumed = True

    def _restore_loop_state(self) -> None:
        tensors, meta = self._resume
        self._resume = None
        pos = meta["position"]
        groups = meta["optimizer"]["param_groups"]
        if groups:
            state: dict = {}
            for name, value in tensors.items():
                if name.startswith("optimizer/"):
                    _, i, key = name.split("/", 2)
                    state.setdefault(int(i), {})[key] = value
            for name, value in meta["optimizer"]["scalars"].items():
                i, key = name.split("/", 1)
                state.setdefault(int(i), {})[key] = value
            for group in groups:
                if "betas" in group:
                    group["betas"] = tuple(group["betas"])
            self.optimizer.load_state_dict({"state": state, "param_groups": groups})
        self.precision.load_state_dict(meta.get("scaler"))
        self._gen.set_state(tensors["rng/shuffle"])
        augment_state = tensors.get(f"rng/augment/{self.world.rank}" if self.world.rank else "rng/augment")
        if augment_state is not None:
            self._aug_gen.set_state(augment_state)
        mine = f"rng/torch/{self.world.rank}" if self.world.rank else "rng/torch"
        torch.set_rng_state(tensors.get(mine, tensors["rng/torch"]))
        cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
        if cuda and self.device.type == "cuda":
            torch.cuda.set_rng_state_all(cuda)
        if pos["batch"] == 0:  # at an epoch boundary: the next epoch starts fresh
            self.epoch, self.batch, self._between_epochs = pos["epoch"] - 1, 0, True
        else:
            self.epoch, self.batch, self._between_epochs = pos["epoch"], pos["batch"], False
            self._epoch_start_state = tensors["rng/shuffle"]
            terms = tensors.get("epoch/terms")
            self._terms = list(terms.to(self.device).unbind(0)) if terms is not None else []
            # a checkpoint from before named terms: (loss, recon, reg, counted)
            self._term_names = tuple(meta.get("terms", ("recon", "reg")))
            self._pad = [self._unit.new_zeros(())] * max(0, 2 - len(self._term_names))
            self._epoch_elapsed = meta.get("epoch_elapsed", 0.0)
