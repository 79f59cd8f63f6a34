"""``python -m vla_ros.cli``: the ``vla-ros`` command (e.g. under ``torchrun``)."""

import sys

from vla_ros.cli import main

sys.exit(main())
