"""`make bench`: throughput, latency, AWS calls, cost, memory and import time of the pipeline.

Everything runs on this machine: AWS is moto (in-process, or moto's server for the subprocesses
that measure memory), receivers are HTTP servers on 127.0.0.1 in separate processes. Each scenario
prints one JSON line; a markdown table of the figures follows and is written to bench/RESULTS.md.
Missing a target is reported, never an error: the exit code is 0 whenever every scenario ran.

Run one scenario with `python -m bench fanout` (several names may be given).
"""
