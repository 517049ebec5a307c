"""Per-hop protocol endpoints: the layers of one link composed into one sans-IO object.

- :mod:`linkstack.hops.rf`  ground station ↔ spacecraft RF link: TC frames under COP-1 in
  CLTUs on the uplink, TM frames with the CLCW in the OCF in CADUs on the downlink.
- :mod:`linkstack.hops.isl` satellite ↔ satellite laser link: USLP frames carrying a
  selective-repeat ARQ over Reed-Solomon coded CADUs, both ways.
- :mod:`linkstack.hops.security` optional SDLS (355.0-B-2) on any hop direction: frames
  secured before the coding chain, verified before anything above the frames sees them.

Each endpoint takes Space Packets and the time, and gives coded units (one CLTU or CADU each)
to put on the physical channel; the simulators (virtual time) and the UDP driver (real time)
move the units. See :mod:`linkstack.hops.base` for the common interface.
"""

from linkstack.hops.base import HopEndpoint, Reception, Unit, split_packets
from linkstack.hops.isl import IslEndpoint, IslHopConfig
from linkstack.hops.rf import RfGround, RfHopConfig, RfSpace

__all__ = [
    "HopEndpoint",
    "IslEndpoint",
    "IslHopConfig",
    "Reception",
    "RfGround",
    "RfHopConfig",
    "RfSpace",
    "Unit",
    "split_packets",
]
