#!/usr/bin/env python3
# cli_startup.py — start-up cost of two rift binaries side by side (CI jobs run rift in bursts).
# Usage: cli_startup.py OLD_RIFT NEW_RIFT STATE [RUNS]. STATE is a store whose riftd is running
# with a branch "b1" (rift url reads files only; rift list asks riftd). The binaries run
# alternately so both see the same load; prints the median and 90th percentile of wall time and
# the mean CPU time (user + system, from the children's rusage) of each.
import resource
import statistics
import subprocess
import sys
import time


def one(binary, args):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run([binary] + args, stdout=subprocess.DEVNULL, check=True)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return (t1 - t0) * 1000, cpu * 1000


def main():
    if len(sys.argv) < 4:
        sys.exit("usage: cli_startup.py OLD_RIFT NEW_RIFT STATE [RUNS]")
    old, new, state = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 300
    commands = {
        "--help": ["--help"],
        "list": ["--state", state, "list"],
        "url b1": ["--state", state, "url", "b1"],
    }
    for name, args in commands.items():
        wall = {old: [], new: []}
        cpu = {old: [], new: []}
        for i in range(runs):
            for binary in (old, new) if i % 2 == 0 else (new, old):
                w, c = one(binary, args)
                wall[binary].append(w)
                cpu[binary].append(c)
        for label, binary in (("old", old), ("new", new)):
            w = sorted(wall[binary])
            print(f"{name:8s} {label}: wall median {statistics.median(w):6.1f} ms, "
                  f"p90 {w[int(runs * 0.9)]:6.1f} ms; cpu mean "
                  f"{statistics.mean(cpu[binary]):5.1f} ms")


if __name__ == "__main__":
    main()
