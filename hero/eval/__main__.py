"""``python -m hero.eval`` (see hero.eval.cli)."""

import sys

from hero.eval.cli import main

sys.exit(main())
