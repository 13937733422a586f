import sys

from mmgraph.cli.main import main

sys.exit(main())
