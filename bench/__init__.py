"""npd-sync's benchmark suite: `make bench` (or `python -m bench --help`).

Figures P1-P11 (bench/README.md), each measured against a throwaway PostgreSQL cluster of
its own (durable settings) and the in-process Monday emulator, with the real `npd-sync
listen` as a subprocess. Nothing here asserts a time: the suite reports each figure against
its target and writes every raw sample to JSON.
"""
