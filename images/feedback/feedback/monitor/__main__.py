"""`python -m feedback.monitor`: run the monitor with settings from the environment."""

import sys

from feedback.monitor.main import main

sys.exit(main())
