"""`make bench`: throughput, latency, AWS calls, cost, memory and import time of the pipeline.

Everything runs on this machine: AWS is moto, receivers are HTTP servers on 127.0.0.1 in separate
processes. Where the delivery path is timed (fast_receiver, slow_receivers, cost), moto is its
server in a process of its own (bench/moto_process.py), since AWS is remote and a call to it frees
the caller's GIL; fanout, which only counts calls, runs moto in-process; memory_import's handlers
reach moto's server in the benchmark's process from interpreters of their own. Each scenario
prints one JSON line; a markdown table of the figures follows and is written to bench/RESULTS.md.
Missing a target is reported, never an error: the exit code is 0 whenever every scenario ran.

Run one scenario with `python -m bench fanout` (several names may be given).
"""

# Everything is moto: fake credentials, for the benchmark's process and the interpreters it starts.
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
