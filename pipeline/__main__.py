import os
import sys

# The command line does no large dense linear algebra (Markov order 1 inverts at most a few hundred
# rows; higher orders iterate sparse matrices), while OpenBLAS starts a thread per core when numpy
# loads: ~0.12 s of CPU on every command, measured, which a 2-core machine pays out of the scans
# running beside it. An explicit setting of the user's wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .cli import main  # noqa: E402 - after the setting above


def entry() -> None:
    """The ``attribution`` console command (pyproject.toml): the same as ``python -m pipeline``."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
