"""What every local server needs, once: processes, ports, start-up errors, Java and Maven, paths, locks, Go tool builds.

Nothing here knows a particular server; the servers in `devstack.servers` are built from these parts.
"""
