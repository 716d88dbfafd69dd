"""`python -m feedback.indexer`: run the indexer with settings from the environment;
`python -m feedback.indexer setup`: the privileged setup it needs first (feedback.indexer.setup)."""

import sys

if sys.argv[1:] == ["setup"]:
    from feedback.indexer.setup import main
elif sys.argv[1:]:
    sys.stderr.write(f"usage: python -m feedback.indexer [setup] (got {' '.join(sys.argv[1:])!r})\n")
    sys.exit(2)
else:
    from feedback.indexer.main import main

sys.exit(main())
