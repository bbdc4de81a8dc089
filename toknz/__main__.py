"""``python -m toknz``: the command line (see :mod:`toknz.cli`)."""

from toknz.cli import main

main()
