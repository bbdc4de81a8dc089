"""``python -m toknz.cli``: the command line, as ``toknz`` and ``python -m toknz``."""

from toknz.cli import main

main()
