"""Channel simulators in virtual time (installed as ``linkstack.sims``)."""
