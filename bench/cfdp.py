"""CFDP figures: a 10 MB model upload on a noisy uplink, and PDU throughput of the entity.

The headline (each beside a baseline measured in the same run)::

    upload 10 MB class 2 BER 1e-5: ratio <r>    total time / bound, default scenario, class 2,
    upload 10 MB class 2 clean:    ratio <r>    the same upload with a clean uplink (baseline)
    cfdp pdus: <X> MB/s                         file octets through CfdpEntity, one core
    spacepackets pdus: <X> MB/s                 the same PDUs packed and parsed alone (baseline)

*Upload.* :func:`linkstack.sims.file_transfer.run_upload` of a 10 MB model (``--swap``) over
the default scenario (64 kbit/s S-band uplink with COP-1, laser ISL, a 9.2 min pass every
98.8 min), in virtual time, with ``links.uplink.ber=1e-5``; the ratio is the total time
(request to the model verified and swapped in) over the bound (the file's octets back to back
at each hop's rate inside its contact windows, plus propagation). Target: <= 1.15.

*PDUs.* Two :class:`~linkstack.cfdp.entity.CfdpEntity` joined directly (no link, no loss):
the sender's :meth:`pull` encodes every PDU (reads the file, builds and packs it), the
receiver's :meth:`receive` decodes it, stores the data and answers; MB = 10^6 octets of file
per CPU second (``time.process_time``, best of ``--repeat`` runs). The baseline packs the same
file data PDUs with spacepackets and parses them back with ``PduFactory``, with nothing else.

Run: ``python bench/cfdp.py [--size OCTETS] [--pdu-mb N] [--skip-upload]``. Nothing here
asserts a time.
"""

from __future__ import annotations

import argparse
import random
import time

from spacepackets.cfdp import PduConfig, TransmissionMode
from spacepackets.cfdp.pdu import FileDataPdu, PduFactory
from spacepackets.cfdp.pdu.file_data import FileDataParams
from spacepackets.util import ByteFieldU16

from linkstack.cfdp import CfdpEntity, EntityConfig, MemoryFilestore, TransactionFinished

MB = 1_000_000
MAX_PDU = 1011  # what the default path's TC frames carry (README: 997 octets of file data)


def upload_ratio(size: int, sets: list[str]) -> tuple[float, str, int, float]:
    from linkstack.sims.file_transfer import run_upload
    from linkstack.sims.scenario import load_scenario

    data = random.Random(1).randbytes(size)
    t = time.process_time()
    report = run_upload(load_scenario("default", sets), data, "models/bench.gguf",
                        transfer_class=2, swap=True)
    cpu = time.process_time() - t
    return report.ratio, report.status, report.passes, cpu


def entity_pdus(size: int) -> float:
    """CPU seconds to move ``size`` octets between two directly joined entities (class 2)."""
    data = random.Random(2).randbytes(size)
    a = CfdpEntity(EntityConfig(1, max_pdu_length=MAX_PDU), MemoryFilestore({"f": data}),
                   peers=[2])
    b = CfdpEntity(EntityConfig(2, max_pdu_length=MAX_PDU), MemoryFilestore(), peers=[1])
    now = 0.0
    t = time.process_time()
    a.put(2, "f", "g", 2, now=now)
    finished = False
    while not (finished and a.idle and b.idle):
        moved = False
        for src, dst in ((a, b), (b, a)):
            for pdu in src.pull(now, limit=64):
                dst.receive(pdu, now)
                moved = True
        finished = finished or any(isinstance(e, TransactionFinished) and e.role == "source"
                                   for e in a.events())
        b.events()
        if not moved:
            deadlines = [d for d in (a.next_deadline(), b.next_deadline()) if d is not None]
            if not deadlines:
                break
            now = max(now, min(deadlines))
            for e in (a, b):
                d = e.next_deadline()
                if d is not None and d <= now:
                    e.on_timer(now)
    cpu = time.process_time() - t
    if b.filestore.get("g") != data:
        raise SystemExit("bench: the file did not arrive intact")
    return cpu


def spacepackets_pdus(size: int) -> float:
    """CPU seconds to pack and parse the file data PDUs of ``size`` octets, nothing else."""
    data = random.Random(2).randbytes(size)
    conf = PduConfig(ByteFieldU16(1), ByteFieldU16(2), ByteFieldU16(1),
                     TransmissionMode.ACKNOWLEDGED)
    seg = MAX_PDU - 4 - 10  # header (2-octet IDs and sequence number) + offset
    t = time.process_time()
    for off in range(0, size, seg):
        raw = FileDataPdu(conf, FileDataParams(data[off:off + seg], off)).pack()
        pdu = PduFactory.from_raw(raw)
        assert pdu is not None
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=10 * MB, help="upload size, octets")
    ap.add_argument("--pdu-mb", type=float, default=4.0, help="MB through the entities")
    ap.add_argument("--repeat", type=int, default=3, help="best of N for the PDU figures")
    ap.add_argument("--skip-upload", action="store_true")
    args = ap.parse_args()
    mb = args.size / MB
    if not args.skip_upload:
        for label, sets in (("BER 1e-5", ["links.uplink.ber=1e-5"]), ("clean", [])):
            ratio, status, passes, cpu = upload_ratio(args.size, sets)
            print(f"upload {mb:g} MB class 2 {label}: ratio {ratio:.4f}   "
                  f"({status}, {passes} passes, {cpu:.1f} s CPU)", flush=True)
    n = int(args.pdu_mb * MB)
    eng = min(entity_pdus(n) for _ in range(args.repeat))
    base = min(spacepackets_pdus(n) for _ in range(args.repeat))
    print(f"cfdp pdus: {n / MB / eng:.2f} MB/s   (CfdpEntity pull + receive, class 2, "
          f"{MAX_PDU}-octet PDUs)")
    print(f"spacepackets pdus: {n / MB / base:.2f} MB/s   (file data PDUs packed and parsed "
          f"alone: baseline)")


if __name__ == "__main__":
    main()
