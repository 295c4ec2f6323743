"""Print which functions take the most samples in py-spy's folded stacks.

Each input line is ``frame;frame;...;frame COUNT``, as `py-spy record --format
raw` writes it, with frames such as ``Gateway.handle (pipeline.py:57)``.
Inclusive share: samples whose stack contains the function.  Self share:
samples in which it is the innermost frame.  Functions in every sample, such as
the event loop's, are left out of the inclusive list.

Run: ``python bench/profile_summary.py gateway.folded --top 40``
"""

from __future__ import annotations

import argparse
from collections import Counter


def function_of(frame: str) -> str:
    """Return the frame without its line number: ``name (file)``."""
    name, _, location = frame.partition(" (")
    if not location:
        return frame

    return f"{name} ({location.rsplit(':', 1)[0].rstrip(')')})"


def count_samples(path: str) -> tuple[Counter, Counter, int]:
    inclusive: Counter = Counter()
    innermost: Counter = Counter()
    total = 0
    with open(path, encoding="utf-8") as file:
        for line in file:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue

            samples = int(count)
            functions = [function_of(frame) for frame in stack.split(";")]
            total += samples
            for function in set(functions):
                inclusive[function] += samples
            innermost[functions[-1]] += samples

    return inclusive, innermost, total


def print_shares(title: str, counts: Counter, total: int, top: int) -> None:
    print(title)
    for function, samples in counts.most_common(top):
        print(f"{samples / total:7.1%}  {function}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="file written by py-spy record --format raw")
    parser.add_argument("--top", type=int, default=40, help="functions to list")
    options = parser.parse_args(argv)

    inclusive, innermost, total = count_samples(options.path)
    if total == 0:
        raise SystemExit(f"Error: no samples in {options.path}")

    print(f"{total} samples")
    below_every_sample = Counter()
    for function, samples in inclusive.items():
        if samples < total:
            below_every_sample[function] = samples

    print_shares("inclusive:", below_every_sample, total, options.top)
    print_shares("self:", innermost, total, options.top)


if __name__ == "__main__":
    main()
