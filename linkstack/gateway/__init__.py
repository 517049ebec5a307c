"""The MQTT ground gateway: prompts from a broker through the stack, results back to the broker.

- :mod:`linkstack.gateway.mqtt`     topics, prompt parsing, result publishing, the choice of the
  prompt service behind it (simulated link in virtual time, or a UDP hop in real time)
- :mod:`linkstack.gateway.journal`  the on-disk journal that lets a killed gateway lose nothing
- :mod:`linkstack.gateway.security` TLS to the broker (verified, host name checked) and the
  gateway's credentials: client certificate, password file
"""
