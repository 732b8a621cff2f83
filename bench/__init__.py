"""Benchmarks (`make bench`); each writes its JSON to bench/results/. See bench/README.md."""
