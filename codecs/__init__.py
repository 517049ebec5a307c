"""Sync and channel coding (installed as ``linkstack.codecs``).

CRC (FECF), Reed-Solomon (131.0-B), pseudo-randomizers, ASM frame synchronization
and CLTU/BCH (231.0-B).
"""
