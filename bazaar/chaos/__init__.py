"""`bazaar chaos`: a fault-injection harness that checks the cluster's guarantees from outside.

processes.py runs the cluster's children, clients.py trades against it, faults.py kills and
freezes its processes, invariants.py and report.py judge the records (plain functions), and
run.py ties them together.
"""
