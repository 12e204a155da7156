"""Tools for a machine without production around it: the local S3 server, the simulated agent and its worlds.

Explained in docs/operations.md.
"""
