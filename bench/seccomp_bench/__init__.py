"""seccomp-recorder's benchmark suite: recorder overhead, fidelity and control-plane timings.

`python -m seccomp_bench run` measures, writes the results as JSON, then renders
the Markdown page and its plots from that JSON (`make bench`, `make bench-quick`).
`python -m seccomp_bench render` renders them again from a results file.
"""
