"""The limits aekit checks input against before spending memory or time on it.

A file of a few bytes can declare an image of 13000x13000 pixels, labels up to
10**12 or a pickle that expands without end; a config or a checkpoint's metadata
can ask for a layer of 10**8 units. Every such number is checked here against a
limit before anything is allocated, and refused with a line that names it, the
limit and how to raise it. The limits a real user might need to raise read an
environment variable (``AEKIT_MAX_IMAGE_PIXELS=200000000``), at the moment of the
check, not at import; docs/limits.md lists them all.

This module imports nothing heavy: the config, the data loaders and the run
directory all use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from aekit.errors import ConfigError


@dataclass(frozen=True)
class Limit:
    """A bound on one kind of input, raisable with the environment variable ``env``."""

    env: str
    default: int
    what: str  # what is counted, for the messages: "pixels per image"

    def value(self) -> int:
        """The limit in force: ``env`` when set (a whole number >= 1), else ``default``."""
        text = os.environ.get(self.env, "").strip().replace("_", "")
        if not text:
            return self.default
        if not text.isdigit() or int(text) < 1:
            raise ConfigError(f"{self.env}: {os.environ[self.env]!r} is not a limit; give a whole number >= 1 "
                              f"(default {self.default:,})")
        return int(text)

    def exceeded(self, count: int) -> str | None:
        """``None`` when ``count`` is within the limit, else the words that say so, for a message."""
        limit = self.value()
        if count <= limit:
            return None
        return f"{count:,} {self.what}, over the limit of {limit:,}; raise it with the environment variable {self.env}"


# A 100-megapixel photo decodes to 300 MB of RGB, more for 16-bit files, in every decoding
# worker; larger cameras are rare, and a crafted header can declare any size in a few bytes.
IMAGE_PIXELS = Limit("AEKIT_MAX_IMAGE_PIXELS", 100_000_000, "pixels per image")
# Class names are made for every label up to the largest: 10**12 would never end.
CLASSES = Limit("AEKIT_MAX_CLASSES", 10_000, "classes")
# 10**9 float32 weights are 4 GB, 16 GB with Adam's two moments and the gradient.
PARAMETERS = Limit("AEKIT_MAX_PARAMETERS", 1_000_000_000, "model parameters")

def check_environment() -> None:
    """Read every limit's environment variable: one set to anything but a whole number is a ConfigError."""
    for limit in (IMAGE_PIXELS, CLASSES, PARAMETERS):
        limit.value()


def ram_bytes() -> int:
    """The physical memory of this machine: data declaring more can never be loaded, whatever its file's size."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): no limit known
        return 1 << 62


# Fixed bounds on config fields: far above any useful value, far below what overflows
# a C integer or asks for terabytes (each is a ``rule(max=...)`` in aekit.config).
MAX_WIDTH = 65_536  # latent_dim, a hidden layer's width, a convolution's channels
MAX_SEED = 2**32 - 1
MAX_EPOCHS = 1_000_000
MAX_BATCH_SIZE = 2**31 - 1
MAX_CHANNELS = 4  # of an image, in a checkpoint's input_shape (aekit makes 1 or 3)

# safe_pickle: a CIFAR batch is a dict of a list of labels, two levels deep.
PICKLE_DEPTH = 100
