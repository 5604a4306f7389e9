"""crmkit's performance suite: ``python -m benchmarks`` (or ``make bench``).

Each benchmark prints its figure beside a reference measured in the same run, as a ratio:

* :mod:`benchmarks.hooks` — hook dispatch through the kernel's facade against bare pluggy;
* :mod:`benchmarks.timeline` — one customer's timeline at a million interactions against
  a bare indexed SELECT, on SQLite and PostgreSQL.

These are not tests: nothing here fails on a slow figure, it is reported.
"""
