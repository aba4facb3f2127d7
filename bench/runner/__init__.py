"""The load benchmark's runner, in the modules ``bench/run.py`` (its command line) puts together:

* ``config``: the knobs (``BENCH_*`` environment variables) and the scenarios with their targets;
* ``stack``: the production-like stack (``scripts/stack.py``) with the bench's counters;
* ``scenarios``: seeding, the probes, wrk runs, the webhook fan-out, the single-thread cProfile;
* ``profiling``: py-spy sampling and its summaries;
* ``report``: the table on stdout.
"""
