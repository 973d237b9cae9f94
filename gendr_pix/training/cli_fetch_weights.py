"""`python -m gendr_pix fetch-weights [--cache DIR]`: convert LPIPS/DISTS weights, extract ncnn references."""

from .cli_fetch import add_weights_arguments as add_arguments
from .cli_fetch import run_weights as run

__all__ = ["add_arguments", "run"]
