import sys

from emkit.cli.main import main

sys.exit(main())
