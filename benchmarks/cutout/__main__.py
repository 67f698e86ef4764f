import sys

from benchmarks.cutout.core import main

sys.exit(main())
