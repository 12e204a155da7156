"""The `build_features` and `train` tasks: the window's rows encoded into features, and each candidate trained.

Explained in docs/models.md.
"""
