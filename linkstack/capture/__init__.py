"""Captures for Wireshark and scapy.

- :mod:`linkstack.capture.pcap`          every coded unit, frame and Space Packet as IPv4/UDP
  datagrams in a pcap file, one UDP port per layer
- :mod:`linkstack.capture.scapy_layers`  scapy layers derived from the ``construct`` declarations
"""
