"""Throughput benchmarks of the ledger, each measured against a baseline in the same run."""
