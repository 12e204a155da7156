"""The `validate_day` and `validate` tasks: every log line read into rows or a named fault, each day judged once
by the contract's rules and Great Expectations, and the window judged from its days.

Explained in docs/data-gate.md.
"""
