"""Conformance cases that fail today (strict xfail: each fails the suite once fixed, then remove it).

Empty: every case of the table passes. A case listed here must name its reason, e.g.
``'gradflow.x.f[arg=nan]': 'why it cannot be fixed yet'``."""

KNOWN_FAILURES: dict = {
}
