"""`python -m gendr_pix fetch-data --data DIR`: download the Debian photo packages and split them."""

from .cli_fetch import add_data_arguments as add_arguments
from .cli_fetch import run_data as run

__all__ = ["add_arguments", "run"]
