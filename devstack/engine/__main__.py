"""`python -m devstack.engine --sdep ... --namespace ... --predictor ...` (see devstack/engine/main.py)."""

import sys

from devstack.engine.main import main

sys.exit(main())
