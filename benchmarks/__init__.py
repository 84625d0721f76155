"""Benchmarks: the project against the article's designs on the demo gallery."""
