"""linkstack: a CCSDS space link protocol stack for AI payload traffic.

The tree, from the bottom up (specs/architecture.md explains the principles behind it):

Foundation
    ``linkstack.errors``      one exception hierarchy; every decode error names layer, field, offset
    ``linkstack.bitfields``   fast pack/unpack derived from one ``construct`` declaration

Sans-IO protocol engines (bytes and ``now`` in, bytes and events out; no clock, no socket)
    ``linkstack.spp``         Space Packet Protocol (CCSDS 133.0-B-2), time codes (301.0-B-4)
    ``linkstack.frames``      TC / TM / AOS / USLP transfer frames, the CLCW
    ``linkstack.mux``         virtual channels, MAPs, packet zones, master-channel multiplexing
    ``linkstack.codecs``      CRC, Reed-Solomon, randomizers, ASM sync, CLTU/BCH (repo ``codecs/``)
    ``linkstack.arq``         COP-1 (FOP-1, FARM-1, ground operator; 232.1-B-2), selective repeat
    ``linkstack.hops``        one hop's layers composed: RF (COP-1, CLTU / CADU) and ISL (SR, RS)
    ``linkstack.payload``     prompt / result messages, the onboard model endpoint, the client

Around the engines
    ``linkstack.drivers``     real-time I/O: the timer/poll pump, UDP hops, the channel proxy
    ``linkstack.gateway``     the MQTT ground gateway and its journal
    ``linkstack.capture``     pcap files and scapy layers for Wireshark
    ``linkstack.specgen``     the generator of ``specs/`` from the declarations
    ``linkstack.cli``         the ``linkstack`` command (commands only)

Virtual time (repo ``sims/``, installed as ``linkstack.sims``)
    ``engine``, ``link``, ``channel``, ``bit_errors``, ``geometry``, ``scenario``,
    ``topology`` (scenario -> hops),
    ``roundtrip``, ``breakdown``, ``sweep``, ``tune``, ``arq_loopback``, and
    ``constellation`` (orbits, contacts, routing and traffic over many satellites)
"""

__version__ = "0.1.0"
