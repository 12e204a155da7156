"""The `deploy` task and what else moves a model in front of the agent: verified artifacts, the manifest's
compare-and-swap, the canary and the rollback.

Explained in docs/release.md.
"""
