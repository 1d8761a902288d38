"""Benchmarks, run one at a time as ``python -m tests.perf.NAME [--scale S]``.

They are not part of the default test run: shared machines are noisy, so each
benchmark measures its own baseline in the same run and prints one line per
figure, ``BENCH <figure> <value> <unit> target <op> <number>``.
"""
