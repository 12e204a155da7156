"""The `evaluate` and `choose` tasks: the candidates and the champion scored on the same holdout, the gate's
rules, the decision.

Explained in docs/evaluation.md.
"""
