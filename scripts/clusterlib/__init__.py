"""The parts of ``scripts/cluster.py`` (which keeps the ``up``/``down`` command line and the ``Cluster``
that puts them together): ``topology`` (constants, helpers, prerequisites, the state file and the
processes it records), ``postgres`` (primary and streaming replicas), ``sentinel`` (Redis primary,
replica and Sentinels), ``haproxy`` (the balancer) and ``app`` (the EasyPay processes and their
environment). Standard library only, like the script."""
