"""Print which functions take the most samples in py-spy's folded stacks.

Each input line is ``frame;frame;...;frame COUNT``, as `py-spy record --format
raw` writes it, with frames such as ``Gateway.handle (pipeline.py:57)``.
Inclusive share: samples whose stack contains the function.  Self share:
samples in which it is the innermost frame.  Functions in every sample, such as
the event loop's, are left out of the inclusive list.

With ``--own DIR``, it also prints the samples that are the work of the code
in DIR, such as the gateway package.  Each sample goes to the innermost frame
that is either in DIR or in a framework (aiohttp and its parts, asyncio,
uvloop).  The other libraries that a frame calls, such as sqlite3, random or
prometheus_client, count as its own work.  So a sample in aiohttp's client,
called by the gateway's forwarder, is aiohttp's work, and a sample in
prometheus_client, called by the gateway's metrics, is the gateway's.  This
needs the full file names in the frames: `py-spy record --full-filenames`.

Run: ``python bench/profile_summary.py gateway.folded --top 40 --own gateway``
"""

from __future__ import annotations

import argparse
import os
import re
from collections import Counter
from pathlib import Path

# Top-level packages whose frames are the framework's work, not the caller's:
# the HTTP server and client and the event loop.
FRAMEWORK_PACKAGES = frozenset(
    (
        "aiohttp",
        "aiohappyeyeballs",
        "aiosignal",
        "asyncio",
        "frozenlist",
        "multidict",
        "propcache",
        "uvloop",
        "yarl",
    )
)
# The part of a full file name after which a library's own path begins.
_LIBRARY_ROOT = re.compile(r".*/(?:site-packages|dist-packages|lib/python3\.\d+)/")


def split_frame(frame: str) -> tuple[str, str]:
    """Return the function and the file of a frame, without the line number."""
    name, _, location = frame.partition(" (")
    if not location:
        return frame, ""

    return name, location.rstrip(")").rsplit(":", 1)[0]


def library_file(file: str) -> str | None:
    """Return a library's file from its package on, or None for other files."""
    shortened = _LIBRARY_ROOT.sub("", file, count=1)
    return shortened if shortened != file else None


def short_file(file: str) -> str:
    """Shorten a file name to its package path, or relative to the working folder."""
    shortened = library_file(file)
    if shortened is not None:
        return shortened

    return file.removeprefix(os.getcwd() + "/")


def function_of(frame: str) -> str:
    """Return the frame without its line number: ``name (file)``."""
    name, file = split_frame(frame)
    if not file:
        return frame

    return f"{name} ({short_file(file)})"


def is_framework(file: str) -> bool:
    shortened = library_file(file)
    return shortened is not None and shortened.split("/", 1)[0] in FRAMEWORK_PACKAGES


def owner_of(frames: list[str], own_dir: str) -> str | None:
    """Return the function in `own_dir` whose work the sample is, or None.

    The innermost frame that is in `own_dir` or in a framework decides.
    """
    for frame in reversed(frames):
        name, file = split_frame(frame)
        if file.startswith(own_dir):
            return f"{name} ({file.removeprefix(own_dir)})"
        if is_framework(file):
            return None

    return None


def count_samples(path: str) -> tuple[Counter, Counter, int]:
    inclusive: Counter = Counter()
    innermost: Counter = Counter()
    total = 0
    for frames, samples in read_stacks(path):
        functions = [function_of(frame) for frame in frames]
        total += samples
        for function in set(functions):
            inclusive[function] += samples
        innermost[functions[-1]] += samples

    return inclusive, innermost, total


def count_own_samples(path: str, own_dir: str) -> Counter:
    """Count the samples of each function in `own_dir`, as `owner_of` assigns them."""
    own: Counter = Counter()
    for frames, samples in read_stacks(path):
        owner = owner_of(frames, own_dir)
        if owner is not None:
            own[owner] += samples

    return own


def read_stacks(path: str):
    """Yield the frames, outermost first, and the sample count of each line."""
    with open(path, encoding="utf-8") as file:
        for line in file:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack and count.isdigit():
                yield stack.split(";"), int(count)


def print_shares(title: str, counts: Counter, total: int, top: int) -> None:
    print(title)
    for function, samples in counts.most_common(top):
        print(f"{samples / total:7.1%}  {function}")


def print_own_shares(own: Counter, own_dir: str, total: int, top: int) -> None:
    if not own:
        print(
            f"no samples in {own_dir}; were the stacks recorded with "
            "py-spy's --full-filenames?"
        )
        return

    print(
        f"work of {own_dir} (with the libraries it calls, without the "
        f"framework's): {sum(own.values()) / total:.1%} of all samples"
    )
    print_shares("by function:", own, total, top)

    by_file: Counter = Counter()
    for function, samples in own.items():
        by_file[function.rsplit(" (", 1)[1].rstrip(")")] += samples
    print_shares("by file:", by_file, total, top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", help="file written by py-spy record --format raw")
    parser.add_argument("--top", type=int, default=40, help="functions to list")
    parser.add_argument(
        "--own",
        type=Path,
        metavar="DIR",
        help="also list the samples that are the work of the code in DIR",
    )
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
    if options.own is not None:
        own_dir = str(options.own.resolve()) + "/"
        print_own_shares(
            count_own_samples(options.path, own_dir), own_dir, total, options.top
        )


if __name__ == "__main__":
    main()
