"""`python -m feedback.indexer`: run the indexer with settings from the environment."""

import sys

from feedback.indexer.main import main

sys.exit(main())
