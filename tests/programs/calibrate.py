"""Learn each program's tolerance from torch's own run-to-run spread; write expected.json.

Runs every program (or those named) on real torch with seeds 0..K-1 and records, per program:
the final values per seed, and for every ``FINAL`` key its mean, standard deviation, min, max
and the band ``[low, high]`` a run must land in (see README.md for the rule), plus the printed
line shapes, which must not depend on the seed, and the integers every seed printed alike.

    python tests/programs/calibrate.py [--seeds 5] [program ...]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path

if __package__:
    from .run import is_integer_text, line_numbers, program_names, run_program, source_sha256
else:  # run as a script
    from run import is_integer_text, line_numbers, program_names, run_program, source_sha256

EXPECTED_PATH = Path(__file__).resolve().parent / "expected.json"
# The band is a 99% prediction interval for one more run, from K seeds:
#     mean +- t(0.995, K - 1) * std * sqrt(1 + 1/K),
# widened to the farthest seed and to a floor (for values every seed printed alike).
# Student's t quantiles t(0.995, df) for df = 1..10; beyond 10 seeds the last one is used.
T_995 = [63.657, 9.925, 5.841, 4.604, 4.032, 3.707, 3.499, 3.355, 3.250, 3.169]
RELATIVE_FLOOR = 0.05
ABSOLUTE_FLOOR = 0.01


def band(values: list[float]) -> dict:
    """Statistics of one FINAL key over the seeds and the band ``[low, high]`` a run must land in."""
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    spread = T_995[min(len(values), len(T_995) + 1) - 2] * std * math.sqrt(1 + 1 / len(values)) if std else 0.0
    farthest = max(abs(value - mean) for value in values)
    half_width = max(spread, farthest, RELATIVE_FLOOR * abs(mean) + ABSOLUTE_FLOOR)
    return {"values": values, "mean": mean, "std": std, "min": min(values), "max": max(values),
            "tolerance": half_width, "low": mean - half_width, "high": mean + half_width}


def calibrate(program: str, seeds: int, previous: dict | None = None) -> dict:
    """Run the program on torch for seeds 0..seeds-1; with ``previous`` (an entry calibrated on
    fewer seeds), run only the missing seeds and merge."""
    first_seed = previous["seeds"] if previous else 0
    results = [run_program(program, "torch", seed) for seed in range(first_seed, seeds)]
    for result in results:
        if result.returncode != 0 or result.final is None:
            raise RuntimeError(result.describe_failure())
    shapes = previous["line_shapes"] if previous else results[0].shapes
    for result in results:
        if result.shapes != shapes:
            raise RuntimeError(f"{program}: printed line shapes differ between seed 0 and seed {result.seed}; "
                               "a program must print the same lines whatever the seed")
    # an integer every seed printed the same (an epoch, a count, a length) must be printed as is
    per_line = zip(*(result.stdout.splitlines() for result in results))
    fixed_integers = []
    for number, lines in enumerate(per_line):
        numbers_per_run = [line_numbers(line) for line in lines]
        if previous:
            numbers_per_run.append(previous["fixed_integers"][number])
        fixed_integers.append([
            numbers[0] if numbers[0] is not None and is_integer_text(numbers[0]) and len(set(numbers)) == 1
            else None
            for numbers in zip(*numbers_per_run)
        ])
    earlier = {key: stats["values"] for key, stats in previous["final"].items()} if previous else {}
    final = {key: band(earlier.get(key, []) + [result.final[key] for result in results]) for key in results[0].final}
    return {
        "source_sha256": source_sha256(program),
        "seeds": seeds,
        "torch_seconds": (previous["torch_seconds"] if previous else []) + [round(r.seconds, 2) for r in results],
        "final": final,
        "line_shapes": shapes,
        "fixed_integers": fixed_integers,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("programs", nargs="*", help="program names (default: all)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--output", type=Path, default=EXPECTED_PATH,
                        help="where to write (default: expected.json); existing entries are kept")
    parser.add_argument("--add-seeds", action="store_true",
                        help="keep existing entries' seeds and run only the missing ones up to --seeds")
    parser.add_argument("--rebands", action="store_true",
                        help="recompute the bands of existing entries from their stored values; runs nothing")
    args = parser.parse_args(argv)
    if args.rebands:
        expected = json.loads(args.output.read_text())
        for entry in expected.values():
            entry["final"] = {key: band(stats["values"]) for key, stats in entry["final"].items()}
        args.output.write_text(json.dumps(expected, indent=1) + "\n")
        return 0
    import torch  # noqa: F401  (fail early, with torch's own message, when the oracle is missing)

    expected = json.loads(args.output.read_text()) if args.output.exists() else {}
    failures = []
    for program in args.programs or program_names():
        try:
            previous = expected.get(program) if args.add_seeds else None
            if previous and previous["seeds"] >= args.seeds:
                continue
            expected[program] = calibrate(program, args.seeds, previous)
        except RuntimeError as error:
            print(f"{program}: NOT CALIBRATED\n{error}", file=sys.stderr, flush=True)
            failures.append(program)
            continue
        bands = ", ".join(f"{key} in [{entry['low']:.4g}, {entry['high']:.4g}]"
                          for key, entry in expected[program]["final"].items())
        print(f"{program}: {bands}", flush=True)
        args.output.write_text(json.dumps(dict(sorted(expected.items())), indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
