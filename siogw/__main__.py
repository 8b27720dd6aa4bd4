import sys

from siogw.cli import main

sys.exit(main())
