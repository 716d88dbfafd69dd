"""`python -m infra.config schema|table|regenerate`: print the stack-file JSON schema or the docs key table, or
rewrite stacks/config.schema.json and the table in docs/deploy.md after changing a key."""

import json
import sys
from pathlib import Path

from infra.config.schema import json_schema, markdown_table, regenerate

command = sys.argv[1] if len(sys.argv) > 1 else ""
if command == "schema":
    sys.stdout.write(json.dumps(json_schema(), indent=2) + "\n")
elif command == "table":
    sys.stdout.write(markdown_table() + "\n")
elif command == "regenerate":
    regenerate(Path(__file__).resolve().parents[2])
else:
    sys.stderr.write("usage: python -m infra.config schema|table|regenerate\n")
    raise SystemExit(2)
