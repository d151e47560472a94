#!/usr/bin/env python3
"""Writes the seed corpus of the object-ops fuzzer (tests/fuzz/corpus/).

Each seed is a short scenario spelled in the byte encoding that object_ops.cc decodes: a
configuration byte, then operations. Below(n) takes two bytes (big-endian, modulo n), Bit() and
Byte() one. Run it again after changing the encoding in object_ops.cc:
    python3 tests/fuzz/make_seeds.py
"""
import os

OPS = ["create", "validate", "write", "read", "madvise", "pin", "unpin", "evict", "shrink",
       "reclaim", "swapout", "fault", "disarm", "release", "limit", "busy", "flush", "concurrent",
       "map"]
FAULTS = ["store.write", "store.short_write", "store.nospace", "store.read", "store.corrupt",
          "store.interrupt", "page.alloc", "page.prefault", "restore.interrupt", "backup.partial",
          "wait.interrupt", "move.copy"]
# Placement choices of World::PlacementFor.
SYS, TT, VRAM, VRAM_TT, VRAM_DESIRED, EMPTY, SECOND, TT_SYS, VRAM_CONTIG = range(9)


class Seed:
    def __init__(self, limit=2, file_store=False, tiny_store=False, sim=False, sync_moves=False,
                 big_pool=False):
        config = limit | (4 if file_store else 0) | (8 if tiny_store else 0)
        config |= (0x10 if sim else 0) | (0x20 if sync_moves else 0) | (0x40 if big_pool else 0)
        self.out = bytearray([config])
        self.devices = 2 if sim else 1

    def below(self, value):
        self.out += bytes([(value >> 8) & 0xff, value & 0xff])

    def bit(self, value):
        self.out.append(1 if value else 0)

    def byte(self, value):
        self.out.append(value & 0xff)

    def op(self, name):
        self.below(OPS.index(name))

    def create(self, slot, pages, placement, dev=0, prio=0, tail=0, kernel=False):
        self.op("create")
        self.below(slot); self.below(dev); self.below(pages - 1)
        self.bit(tail != 0)
        if tail:
            self.below(tail)
        self.byte(placement); self.below(prio); self.below(0 if kernel else 1); self.bit(False)

    def validate(self, slot, placement, interruptible=False):
        self.op("validate"); self.below(slot); self.byte(placement); self.bit(interruptible)

    def _range(self, offset, length):
        if length is None:
            self.below(2); self.below(0)
        elif length <= 64:
            self.below(0); self.below(offset); self.below(length - 1)
        else:
            self.below(1); self.below(offset); self.below(length - 1)

    def write(self, slot, offset=0, length=None, interruptible=False):
        self.op("write"); self.below(slot); self._range(offset, length); self.bit(interruptible)

    def read(self, slot, offset=0, length=None, interruptible=False):
        self.op("read"); self.below(slot); self._range(offset, length); self.bit(interruptible)

    def madvise(self, slot, dontneed):
        self.op("madvise"); self.below(slot); self.bit(dontneed); self.bit(False)

    def pin(self, slot):
        self.op("pin"); self.below(slot); self.bit(False)

    def unpin(self, slot):
        self.op("unpin"); self.below(slot); self.bit(False)

    def evict(self, dev, mem_type):
        self.op("evict"); self.below(dev); self.below(mem_type); self.bit(False)

    def shrink(self, dev=0, nr=256, may_fs=True, may_io=True, background=False):
        self.op("shrink"); self.below(dev); self.below((nr - 1) // 8)
        self.byte((0 if may_fs else 1) | (0 if may_io else 2) | (4 if background else 0))

    def reclaim(self, target, background=False):
        self.op("reclaim"); self.below(target - 1); self.bit(background)

    def swapout(self, kind, dev=0):
        self.op("swapout"); self.below(kind); self.below(dev)

    def fault(self, point, after=0, interval=1, times=1):
        self.op("fault"); self.below(FAULTS.index(point)); self.below(after)
        self.below(interval - 1); self.below(times - 1)

    def disarm(self):
        self.op("disarm")

    def release(self, slot):
        self.op("release"); self.below(slot)

    def limit(self, choice):
        self.op("limit"); self.below(choice)

    def busy(self, slot, duration_choice=1):
        self.op("busy"); self.below(slot); self.below(duration_choice)

    def flush(self):
        self.op("flush")

    def concurrent(self, steps):
        self.op("concurrent"); self.below(steps - 1)

    # kind: 0 read, 1 read and write (a range written through the mapping), 2 write with discard
    def map(self, slot, kind, offset=0, length=None):
        self.op("map"); self.below(slot); self.below(kind); self.bit(False)
        if kind == 1:
            self._range(offset, length)


def seeds():
    s = Seed(limit=2)
    s.create(0, 40, TT); s.write(0); s.create(1, 24, TT); s.write(1); s.shrink()
    s.map(0, 0); s.map(0, 1, 5000, 9000); s.map(1, 2); s.fault("page.alloc", times=8)
    s.shrink(); s.map(0, 2); s.disarm(); s.read(0); s.read(1); s.madvise(1, True); s.map(1, 0)
    yield "map-restore-discard-and-fail", s

    s = Seed(limit=2)
    s.create(0, 8, TT); s.write(0); s.shrink(); s.validate(0, VRAM); s.read(0)
    yield "memcpy-move-of-a-backed-up-object", s

    s = Seed(limit=2)
    s.create(0, 6, EMPTY); s.write(0, 100, 3000); s.validate(0, VRAM); s.read(0)
    yield "cpu-write-without-a-resource", s

    s = Seed(limit=0)
    s.create(0, 16, TT); s.write(0); s.fault("backup.partial"); s.shrink(); s.disarm()
    s.create(1, 24, SYS); s.write(1); s.shrink(); s.read(0); s.read(1)
    yield "partial-backup", s

    s = Seed(limit=2)
    s.create(0, 5, SYS, tail=1000); s.write(0); s.madvise(0, True); s.create(1, 4, TT)
    s.write(1); s.shrink(); s.madvise(0, False); s.read(0); s.read(1)
    yield "purge-dont-need", s

    s = Seed(limit=2)
    s.create(0, 8, TT); s.write(0); s.pin(0); s.shrink(); s.evict(0, 1); s.swapout(2)
    s.unpin(0); s.shrink(); s.read(0)
    yield "pinned-object-stays", s

    s = Seed(limit=2, sim=True)
    s.create(0, 8, TT, dev=1); s.write(0); s.busy(0, 3); s.validate(0, VRAM)
    s.validate(0, TT); s.busy(0, 2); s.release(0); s.create(1, 12, VRAM_TT, dev=1); s.write(1)
    s.evict(1, 2); s.read(1)
    yield "sim-gpu-ghosts-and-zombies", s

    s = Seed(limit=2, file_store=True)
    s.create(0, 12, SYS); s.write(0); s.shrink(); s.fault("store.read"); s.read(0)
    s.fault("store.corrupt"); s.read(0); s.disarm(); s.read(0)
    yield "store-read-faults", s

    s = Seed(limit=0)
    for slot in range(6):
        s.create(slot, 24, SYS if slot % 2 else TT); s.write(slot)
    for slot in range(6):
        s.read(slot)
    s.swapout(1); s.swapout(2); s.read(3)
    yield "watermark-swapout", s

    s = Seed(limit=1, tiny_store=True)
    for slot in range(4):
        s.create(slot, 20, SYS); s.write(slot)
    s.shrink(nr=512); s.fault("store.nospace", times=4); s.reclaim(200); s.disarm()
    for slot in range(4):
        s.read(slot)
    yield "full-store", s

    s = Seed(limit=1, sim=True)
    for slot in range(4):
        s.create(slot, 10, TT_SYS, dev=slot % 2); s.write(slot)
    s.concurrent(6)
    for slot in range(4):
        s.write(slot, 5, 5000)
    s.concurrent(4)
    for slot in range(4):
        s.read(slot)
    yield "beside-a-reclaiming-thread", s

    s = Seed(limit=2)
    s.create(0, 8, VRAM); s.write(0); s.fault("move.copy"); s.evict(0, 2); s.disarm()
    s.fault("page.alloc", times=2); s.evict(0, 2); s.disarm(); s.read(0)
    s.fault("restore.interrupt"); s.shrink(); s.read(0, interruptible=True); s.disarm(); s.read(0)
    yield "move-and-allocation-faults", s


def main():
    out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out_dir, exist_ok=True)
    for name, seed in seeds():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(bytes(seed.out))


if __name__ == "__main__":
    main()
