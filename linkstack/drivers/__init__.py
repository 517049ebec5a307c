"""Real-time drivers: they move bytes and time between the sans-IO engines and the world.

- :mod:`linkstack.drivers.service`        the prompt-service interface ground apps call, and the
  one timer/poll pump that runs a sans-IO endpoint against a clock
- :mod:`linkstack.drivers.udp`            one hop over UDP datagrams, one process per end
- :mod:`linkstack.drivers.channel_proxy`  a UDP process between the two ends that applies the
  scenario's rate, delay, bit errors, erasures, reordering and duplication

No protocol logic lives here: a driver feeds bytes and ``now`` in, and sends what comes out.
"""
