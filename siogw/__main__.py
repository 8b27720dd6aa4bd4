import sys

from siogw.cli import main

if __name__ == "__main__":  # also imported (not run) by spawned gateway workers
    sys.exit(main())
