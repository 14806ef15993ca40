"""The benchmark harness (`tox -e bench`): not part of the installed package.

`run.py` is the entry point; the pure parts (wrk's summary, the table, the profile summary)
live in their own modules so that tests/unit can check them without processes.
"""
