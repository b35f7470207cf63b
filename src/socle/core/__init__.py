"""The pure domain: the catalog, the naming convention, the graph, the plan and its
reasons, the policy and the cascade rules.

No I/O, no subprocess, no network, no clock: what the core needs from outside
(file contents and digests, the time, scanner names) is passed in.
"""
