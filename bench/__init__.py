"""Benchmarks of borderwatch (issue 7): polling at scale, ingest throughput, near-duplicates, queries,
alert latency. Run them all with `python -m bench` (`--quick` for a one-minute run); see bench/README.md."""
