"""Benchmark the proxy against a bare pass-through measured in the same run (`python -m bench`).

Machines are noisy, so absolute numbers mean little; only the proxy/baseline ratios within one run do.
"""
