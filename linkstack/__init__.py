"""linkstack: a CCSDS-style space link protocol stack for AI payload traffic.

Layers, from the file tree:

- ``linkstack.spp``      Space Packet Protocol (CCSDS 133.0-B-2)
- ``linkstack.frames``   TC / TM / AOS / USLP transfer frames, CLCW
- ``linkstack.mux``      virtual-channel multiplexing and packet extraction
- ``linkstack.codecs``   CRC, RS, randomizers, ASM sync, CLTU/BCH (folder ``codecs/``)
- ``linkstack.arq``      COP-1 (FOP-1 / FARM-1) and selective repeat
- ``linkstack.payload``  AI prompt/result messages and the onboard model endpoint
- ``linkstack.sims``     channel simulators in virtual time (repo folder ``sims/``)
"""

__version__ = "0.1.0"
