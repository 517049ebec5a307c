"""Constellations: orbits, ground stations, contact plans and routing over changing ISLs.

- :mod:`.plan`     the contact plan: :class:`~.plan.Contact` intervals between numbered nodes
- :mod:`.orbits`   Walker-delta shells and TLE sets propagated with ``sgp4``; ground stations
- :mod:`.contacts` ground-satellite windows and ISL availability from the geometry; ION export
- :mod:`.routing`  earliest-arrival (contact-graph) routes and snapshot shortest paths
"""
