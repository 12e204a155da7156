"""Optional mirrors of what the pipeline decided, for teams that browse models in MLflow; S3 stays the truth."""
