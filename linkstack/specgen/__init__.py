"""The generator of ``specs/``: one Markdown page per layer, built from the code's declarations.

- :mod:`linkstack.specgen.build`       the list of pages, build and ``--check``
- :mod:`linkstack.specgen.render`      Markdown tables, bit diagrams, hex dumps
- :mod:`linkstack.specgen.frames`      Space Packet, TC, TM, AOS, USLP pages (field texts)
- :mod:`linkstack.specgen.coding`      CLTU/BCH and TM synchronization and channel coding pages
- :mod:`linkstack.specgen.cop`         CLCW/COP-1 and selective-repeat pages
- :mod:`linkstack.specgen.payload`     the AI payload message page
- :mod:`linkstack.specgen.compliance`  the compliance matrix
"""
