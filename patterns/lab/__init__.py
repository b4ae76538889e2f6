"""The lab: what measures the recipes, the same way for each.

The seeded workload and what it travels over (simulated, tcp, http), the service on the other
side with a capacity, the probe, the harness, the report and its maths, the backends, and the
registry that says which recipes there are. It stands on the recipes and on nothing above it.
"""
