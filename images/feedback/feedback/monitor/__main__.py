"""`python -m feedback.monitor`: run the monitor with settings from the environment;
`python -m feedback.monitor setup`: the privileged setup of its index it needs first (feedback.monitor.setup)."""

import sys

if sys.argv[1:] == ["setup"]:
    from feedback.monitor.setup import main
elif sys.argv[1:]:
    sys.stderr.write(f"usage: python -m feedback.monitor [setup] (got {' '.join(sys.argv[1:])!r})\n")
    sys.exit(2)
else:
    from feedback.monitor.main import main

sys.exit(main())
