"""Development tools shared by the tests and the benchmarks (not test code, and not used by the service)."""
